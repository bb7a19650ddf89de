"""Does a reranker's wish to stop after its first pick track how many gold passages there are?

For each question: the model's own selection, then the log-probability (teacher-forced, with the
end-of-turn token) of stopping after its first id, ``[a]``, minus that of going on to its second,
``[a], [b]``. If the model had learned when one passage suffices, the margin would be higher where
fewer gold passages are among the candidates. Prints the mean margin per gold count and the AUC
of "one gold or none" against "two gold" questions (0.5: no signal). ``--exclude`` drops questions
that also appear in other files (as ``dynrag eval --exclude``), ``--skip`` the first N left;
``--out`` writes each question's margin, gold positions and the model's first two picks (JSONL,
for `research/scripts/stop_threshold.py`).

    python research/scripts/stop_signal.py dynrag-smollm2-135m \
        data/hotpotqa-retrieved-eval/hotpot_dev_retrieved_eval50.jsonl \
        ../shared/data/hotpotqa/hotpot_dev_distractor_val.json --limit 50
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from tqdm import tqdm

from dynrag import DynamicReranker
from dynrag.core.generative.prompts import Message
from dynrag.data.readers import drop_questions_in, read_examples
from dynrag.eval.metrics import pair_auc


def main() -> None:
    """Print the stop margins of a model on the given data files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data", nargs="+")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--skip", type=int, default=0, help="start after this many questions")
    parser.add_argument("--exclude", action="append", default=[], help="drop these questions")
    parser.add_argument("--out", default=None, help="also write each question's margin (JSONL)")
    args = parser.parse_args()

    rr = DynamicReranker.from_pretrained(args.model)
    backend = rr.backend
    end = backend.tokenizer.eos_token
    fmt = rr.prompt_format

    def logprob(messages: list[Message], text: str) -> float:
        """Summed log-probability of ``text`` and the end of turn (teacher-forced)."""
        text += end
        return backend.continuation_logprob(messages, text) * backend.count_tokens(text)

    margins: dict[int, list[float]] = defaultdict(list)
    rows: list[dict[str, object]] = []
    for path in args.data:
        examples, _ = drop_questions_in(read_examples(path), args.exclude)
        for ex in tqdm(examples[args.skip :][: args.limit], desc=path):
            state = rr._prepare(ex.question, ex.passages, rr.policy)  # presorted, truncated
            messages = fmt.messages(state.query, state.shown)
            sel = rr.rerank(ex.question, ex.passages)
            shown = {orig: pos for pos, orig in enumerate(state.order)}
            ids = [shown[i] for i in sel.indices]
            if len(ids) < 2:
                ids = (ids + [i for i in range(len(state.order)) if i not in ids])[:2]
            stop = logprob(messages, fmt.format_selection(ids[:1]))
            go_on = logprob(messages, fmt.format_selection(ids[:2]))
            margins[min(len(ex.gold or []), 2)].append(stop - go_on)
            first_two = [state.order[i] for i in ids[:2]]  # positions in the file's list
            rows.append(
                {
                    "file": path,
                    "id": ex.id,
                    "gold": ex.gold,
                    "selected": sel.indices,
                    "first_two": first_two,
                    "margin": stop - go_on,
                }
            )
    if args.out:
        with open(args.out, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)

    for gold, values in sorted(margins.items()):
        print(
            f"gold passages {gold}: {len(values)} questions, mean stop margin "
            f"{sum(values) / len(values):+.2f}"
        )
    fewer = margins[0] + margins[1]
    two = margins[2]
    auc = pair_auc(fewer, two)
    if auc is not None:
        print(f"AUC (0-1 gold vs 2 gold): {auc:.3f}")


if __name__ == "__main__":
    main()
