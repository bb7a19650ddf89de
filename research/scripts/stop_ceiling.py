"""How much choosing k alone could buy on top of a selector's order (from ``dynrag eval`` reports).

For each report and each named selector (a ranked selector run with k of 3 or more, e.g.
``hybrid-k:3``), takes every question's selected list and scores its prefixes: the selection F1
of always keeping the first k (k = 0, 1, 2, 3), and of the best prefix per question (an oracle
that knows when to stop but keeps the selector's order), with and without allowing k = 0.
The gap between the best fixed k and the stopping oracle is what a reranker that learned only
when to stop could gain over its first stage; the gap between the stopping oracle and 1.0 is
what only a better order could.

    python research/scripts/stop_ceiling.py research/results/hotpotqa-retrieved/report.json \
        research/results/hotpotqa-val/report.json research/results/heldout/report.json \
        --selector hybrid-k:3 --selector embed-k:3
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from dynrag.eval.metrics import selection_prf

Row = dict[str, Any]


def prefix_f1s(row: Row) -> list[float]:
    """Selection F1 of each prefix of the row's selection, from the empty one to the whole."""
    selected, gold = row["selected"], row["gold"]
    return [selection_prf(selected[:k], gold)[2] for k in range(len(selected) + 1)]


def ceiling_row(rows: list[Row], max_fixed: int = 3) -> dict[str, Any]:
    """Fixed-k and stopping-oracle selection F1 over ``rows`` (one selector's records)."""
    n = len(rows)
    table: dict[str, Any] = {"questions": n}
    per_q = [prefix_f1s(r) for r in rows]
    for k in range(max_fixed + 1):
        table[f"first {k}"] = sum(f[min(k, len(f) - 1)] for f in per_q) / n
    best = [max(range(len(f)), key=lambda k: (f[k], -k)) for f in per_q]
    table["stop oracle"] = sum(f[k] for f, k in zip(per_q, best, strict=True)) / n
    table["its mean k"] = sum(best) / n
    best1 = [max(range(1, len(f)), key=lambda k: (f[k], -k)) if len(f) > 1 else 0 for f in per_q]
    table["stop oracle, k >= 1"] = sum(f[k] for f, k in zip(per_q, best1, strict=True)) / n
    table["its k by gold count"] = {
        g: dict(
            sorted(
                Counter(k for k, r in zip(best, rows, strict=True) if len(r["gold"]) == g).items()
            )
        )
        for g in sorted({len(r["gold"]) for r in rows})
    }
    return table


def main() -> None:
    """Print one markdown table row per (report, selector)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--selector", action="append", required=True)
    args = parser.parse_args()

    head = [
        "report",
        "selector",
        "questions",
        "first 0",
        "first 1",
        "first 2",
        "first 3",
        "stop oracle",
        "its mean k",
        "stop oracle, k >= 1",
        "its k by gold count",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for path in args.reports:
        records = json.loads(path.read_text())["records"]
        for name in args.selector:
            rows = [r for r in records if r["selector"] == name]
            if not rows:
                raise SystemExit(f"{path}: no records of selector {name!r}")
            t = ceiling_row(rows)
            cells = [path.parent.name, name] + [
                f"{v:.3f}" if isinstance(v, float) else str(v) for v in (t[h] for h in head[2:-1])
            ]
            gold = "; ".join(
                f"{g} gold: " + ", ".join(f"k={k} x{c}" for k, c in ks.items())
                for g, ks in t["its k by gold count"].items()
            )
            print("| " + " | ".join([*cells, gold]) + " |")


if __name__ == "__main__":
    main()
