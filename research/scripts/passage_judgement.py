"""Can a language model tell a gold passage from a distractor by reading it, one at a time?

Every recipe for the bundled reranker ends with a model that copies its first stage's order, and
its wish to stop does not follow the number of gold passages
(`research/scripts/stop_signal.py`). This asks the question underneath: does the model, shown
the question and ONE passage (cut to ``--max-passage-tokens``, as the reranker cuts them),
prefer "Yes" to "No" when asked whether the passage is needed to answer? Its score is
log p(Yes) - log p(No) as the first token of its answer (one forward pass). Printed for it and
for the first stage's BM25, MiniLM and hybrid scores:

- AUC within questions: over every (gold, non-gold) pair of a question's candidates, how often
  the gold one scores higher (0.5: chance), averaged over questions with both kinds;
- AUC of the stop decision: on the second passage of the hybrid order (the one every trained
  model adds and should sometimes leave out), how often a gold second passage scores higher than
  a non-gold one, across questions.

    python research/scripts/passage_judgement.py smollm2-135m-instruct \
        data/hotpotqa-retrieved-eval/hotpot_dev_retrieved_eval50.jsonl \
        ../shared/data/hotpotqa/hotpot_dev_distractor_val.json --limit 50
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from tqdm import tqdm

from dynrag import DynamicReranker
from dynrag.core.generative.backends.transformers import TransformersBackend
from dynrag.core.presort import _standardised, bm25_scores, minilm_scores, passage_text
from dynrag.data.readers import read_examples
from dynrag.eval.metrics import pair_auc

ASK = (
    "Question: {question}\n\nPassage: {passage}\n\n"
    "Is this passage needed to answer the question? Answer Yes or No."
)


def main() -> None:
    """Print the within-question and stop-decision AUCs of each scorer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model name or folder (its base model reads the passages)")
    parser.add_argument("data", nargs="+")
    parser.add_argument("--limit", type=int, default=None, help="first N questions of each file")
    parser.add_argument("--max-passage-tokens", type=int, default=128)
    args = parser.parse_args()

    backend = DynamicReranker.from_pretrained(args.model).backend
    if not isinstance(backend, TransformersBackend):
        raise SystemExit(f"{args.model}: needs a model that runs in process (transformers)")
    tok = backend.tokenizer
    yes, no = (tok(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", "No"))

    @torch.inference_mode()
    def llm_scores(question: str, texts: Sequence[str]) -> list[float]:
        scores = []
        for text in texts:
            content = ASK.format(
                question=question, passage=backend.truncate(text, args.max_passage_tokens)[0]
            )
            prompt = backend.render([{"role": "user", "content": content}])
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
            logits = backend.model(input_ids=torch.tensor([ids], device=backend.device)).logits
            scores.append(float(logits[0, -1, yes] - logits[0, -1, no]))
        return scores

    scorers = ("llm", "bm25", "minilm", "hybrid")
    within: dict[str, list[float]] = {s: [] for s in scorers}
    second: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in scorers}
    for path in args.data:
        for ex in tqdm(read_examples(path)[: args.limit], desc=path):
            if not ex.passages or not ex.gold:
                continue
            texts = [passage_text(p) for p in ex.passages]
            bm25, minilm = bm25_scores(ex.question, texts), minilm_scores(ex.question, texts)
            scores = {
                "llm": llm_scores(ex.question, texts),
                "bm25": bm25,
                "minilm": minilm,
                "hybrid": [
                    a + b for a, b in zip(_standardised(bm25), _standardised(minilm), strict=True)
                ],
            }
            order = sorted(range(len(texts)), key=lambda i: (-scores["hybrid"][i], i))
            gold = set(ex.gold)
            for name, s in scores.items():
                auc = pair_auc([s[i] for i in gold], [s[i] for i in range(len(s)) if i not in gold])
                if auc is not None:
                    within[name].append(auc)
                if len(order) > 1:
                    second[name][order[1] not in gold].append(s[order[1]])

    print(f"model: {args.model}, passages cut to {args.max_passage_tokens} tokens")
    print("| scorer | AUC within questions | AUC of the stop decision (2nd hybrid passage) |")
    print("|---|---|---|")
    for name in scorers:
        w = within[name]
        stop = pair_auc(*second[name])
        stop_cell = f"{stop:.3f} ({len(second[name][0])} gold, {len(second[name][1])} not)"
        print(f"| {name} | {sum(w) / len(w):.3f} ({len(w)} questions) | {stop_cell} |")


if __name__ == "__main__":
    main()
