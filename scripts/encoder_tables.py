"""The README's result tables for the encoder default, from `dynrag eval` reports.

    python scripts/encoder_tables.py results/minilm-cut

Prints, per report folder: mean k, selection F1 with its 95% interval, context tokens (and
answer F1 where answers were generated) per selector, mean k by the number of gold passages, and
each dynamic selector's paired difference in selection F1 to each baseline (computed from the
per-question records, so reports written before `dynrag eval` printed it get it too).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from dynrag.eval.report import paired_table
from dynrag.eval.runner import QuestionRecord, compare


def _fmt(x: float | None, d: int = 3) -> str:
    return "–" if x is None else f"{x:.{d}f}"


def table(folder: Path) -> str:
    """One markdown table for the report in ``folder``."""
    report = json.loads((folder / "report.json").read_text())
    rows = [
        "| selector | mean k | sel F1 [95% CI] | answer F1 | ctx tokens |",
        "|---|---|---|---|---|",
    ]
    for name, s in report["summary"].items():
        m, ci = s["means"], s["ci95"]
        low, high = ci.get("sel_f1", (None, None))
        rows.append(
            f"| {name} | {_fmt(m.get('k'), 2)} | {_fmt(m.get('sel_f1'))} "
            f"[{_fmt(low)}, {_fmt(high)}] | {_fmt(m.get('f1'))} | "
            f"{_fmt(m.get('context_tokens'), 0)} |"
        )
    by: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in report["records"]:
        if r["gold"] is not None:
            by[r["selector"]][len(r["gold"])].append(r["k"])
    counts = sorted({g for d in by.values() for g in d})
    k_rows = [
        "| selector | "
        + " | ".join(f"{g} gold (n={len(next(iter(by.values()))[g])})" for g in counts)
        + " |",
        "|---|" + "---|" * len(counts),
    ]
    for name, d in by.items():
        k_rows.append(
            f"| {name} | " + " | ".join(_fmt(sum(d[g]) / len(d[g]), 2) for g in counts) + " |"
        )
    paired = compare([QuestionRecord.model_validate(r) for r in report["records"]])
    paired_rows = ["", "paired against each baseline (sel F1):", "", paired_table(paired)]
    return "\n".join(
        [
            f"`{report['meta']['command']}`",
            "",
            *rows,
            "",
            "mean k by gold count:",
            "",
            *k_rows,
            *(paired_rows if paired else []),
        ]
    )


def main() -> None:
    """Print the tables of every report under the folder given."""
    root = Path(sys.argv[1])
    for folder in sorted(p.parent for p in root.glob("*/report.json")):
        print(f"### {folder.name}\n\n{table(folder)}\n")


if __name__ == "__main__":
    main()
