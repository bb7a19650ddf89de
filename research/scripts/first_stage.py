"""How well the first stage alone selects on a data file, inside and outside an evaluation split.

For each question of ``data`` (questions also in an ``--exclude`` file dropped, as
``dynrag eval --exclude`` drops them), the BM25, MiniLM and hybrid scores of its candidates
(`dynrag.core.presort`). Questions in ``--eval`` form the evaluation split, the rest the
training side. Prints, for both sides: precision at 1 and the mean selection F1 of the top-1 and
top-2 of each scorer (with a 95% bootstrap interval), and the selection F1 of a rule that keeps
the top passage and each next one (up to ``--max-k``) whose hybrid score reaches a threshold,
the threshold fitted on the training side only. It answers two questions about the retrieved
HotpotQA file: is its 50-question evaluation split typical of the file, and how much could k
chosen from the first stage's scores alone gain?

    python research/scripts/first_stage.py ../shared/data/hotpotqa/hotpot_dev_retrieved.jsonl \
        --eval data/hotpotqa-retrieved-eval/hotpot_dev_retrieved_eval50.jsonl \
        --exclude ../shared/data/hotpotqa/hotpot_dev_distractor_train.json \
        --exclude ../shared/data/hotpotqa/hotpot_dev_distractor_val.json
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

from dynrag.core.presort import _standardised, bm25_scores, minilm_scores, passage_text
from dynrag.data.examples import normalize_answer
from dynrag.data.readers import drop_questions_in, read_examples
from dynrag.eval.metrics import bootstrap_ci, selection_prf

Row = dict[str, Any]


def _order(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def _f1s(rows: list[Row], select: Callable[[Row], list[int]]) -> list[float]:
    return [selection_prf(select(r), r["gold"])[2] for r in rows]


def _threshold_rule(t: float, max_k: int) -> Callable[[Row], list[int]]:
    def select(r: Row) -> list[int]:
        order = _order(r["hybrid"])
        return order[:1] + [i for i in order[1:max_k] if r["hybrid"][i] >= t]

    return select


def main() -> None:
    """Print the first stage's selection quality on both sides of the split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--eval", required=True, help="the evaluation split's questions")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--max-k", type=int, default=3)
    args = parser.parse_args()

    examples, _ = drop_questions_in(read_examples(args.data), args.exclude)
    held = {normalize_answer(e.question) for e in read_examples(args.eval)}
    rows: list[Row] = []
    for ex in tqdm(examples, desc="first-stage scores"):
        if not ex.passages or ex.gold is None:
            continue
        texts = [passage_text(p) for p in ex.passages]
        bm25, minilm = bm25_scores(ex.question, texts), minilm_scores(ex.question, texts)
        rows.append(
            {
                "gold": ex.gold,
                "eval": normalize_answer(ex.question) in held,
                "bm25": bm25,
                "minilm": minilm,
                # the hybrid presort's score, from the same two (each scorer runs once)
                "hybrid": [
                    a + b for a, b in zip(_standardised(bm25), _standardised(minilm), strict=True)
                ],
            }
        )
    sides = {
        "training side": [r for r in rows if not r["eval"]],
        "evaluation split": [r for r in rows if r["eval"]],
    }

    train = sides["training side"]
    thresholds = sorted({round(s, 1) for r in train for s in r["hybrid"]})
    best_t = max(thresholds, key=lambda t: sum(_f1s(train, _threshold_rule(t, args.max_k))))
    rule = _threshold_rule(best_t, args.max_k)

    def cell(values: list[float]) -> str:
        low, high = bootstrap_ci(values)
        return f"{sum(values) / len(values):.3f} [{low:.3f}, {high:.3f}]"

    print(f"| selector | {' | '.join(f'{side} ({len(r)})' for side, r in sides.items())} |")
    print("|---|---|---|")
    for scorer in ("bm25", "minilm", "hybrid"):
        hit = [
            cell([float(_order(r[scorer])[0] in r["gold"]) for r in side])
            for side in sides.values()
        ]
        print(f"| {scorer} precision at 1 | {' | '.join(hit)} |")
        for k in (1, 2):
            f1 = [
                cell(_f1s(side, lambda r, s=scorer, k=k: _order(r[s])[:k]))
                for side in sides.values()
            ]
            print(f"| {scorer}-k:{k} sel F1 | {' | '.join(f1)} |")
    f1 = [cell(_f1s(side, rule)) for side in sides.values()]
    mean_k = [f"{sum(len(rule(r)) for r in side) / len(side):.2f}" for side in sides.values()]
    print(f"| hybrid threshold {best_t} (fitted on the training side) sel F1 | {' | '.join(f1)} |")
    print(f"| ... its mean k | {' | '.join(mean_k)} |")


if __name__ == "__main__":
    main()
