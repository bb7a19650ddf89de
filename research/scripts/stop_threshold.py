"""Would a stop threshold on a reranker's stop margin choose k better than greedy decoding does?

Reads two files written by ``research/scripts/stop_signal.py --out``: questions to fit on and
questions to test on. The rule: take the model's first pick, and its second only when the stop
margin (how much more the model wants to end after one id than to go on) is at most a threshold,
fitted on the first file for the best mean selection F1. Prints, for both files, the selection
F1 and mean k of the model as decoded, of always one, of always two, and of the rule.

    python research/scripts/stop_threshold.py fit.jsonl test.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from dynrag.eval.metrics import selection_prf

Row = dict[str, Any]


def _read(path: str) -> list[Row]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _mean_f1(rows: list[Row], select: Callable[[Row], list[int]]) -> tuple[float, float]:
    f1 = sum(selection_prf(select(r), r["gold"])[2] for r in rows) / len(rows)
    return f1, sum(len(select(r)) for r in rows) / len(rows)


def _rule(threshold: float) -> Callable[[Row], list[int]]:
    def select(r: Row) -> list[int]:
        return r["first_two"][:1] if r["margin"] > threshold else r["first_two"][:2]

    return select


def main() -> None:
    """Fit the threshold on the first file, print both files' selection F1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit")
    parser.add_argument("test")
    args = parser.parse_args()
    fit, test = _read(args.fit), _read(args.test)
    candidates = [float("-inf"), *sorted({r["margin"] for r in fit}), float("inf")]
    best = max(candidates, key=lambda t: _mean_f1(fit, _rule(t))[0])
    selectors: dict[str, Callable[[Row], list[int]]] = {
        "as decoded": lambda r: r["selected"],
        "first pick only": lambda r: r["first_two"][:1],
        "first two": lambda r: r["first_two"][:2],
        f"stop threshold {best:+.2f}": _rule(best),
    }
    print(f"| selector | fit ({len(fit)}): sel F1 / mean k | test ({len(test)}): sel F1 / mean k |")
    print("|---|---|---|")
    for name, select in selectors.items():
        cells = [f"{f1:.3f} / {k:.2f}" for f1, k in (_mean_f1(fit, select), _mean_f1(test, select))]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
