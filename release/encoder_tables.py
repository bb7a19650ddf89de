"""The encoder default's result tables (README, docs/results.md), from `dynrag eval` reports.

    python release/encoder_tables.py DIR [--against OTHER]

(``DIR``: e.g. release/reports/dynrag-minilm-cut; ``OTHER``: e.g. research/results/minilm-cut-seed2)

Prints, per report folder: mean k, selection F1 with its 95% interval, context tokens (and
answer F1 where answers were generated) per selector, mean k by the number of gold passages, and
each dynamic selector's paired difference in selection F1 to each baseline (computed from the
per-question records, so reports written before `dynrag eval` printed it get it too).

With `--against OTHER`, each dynamic selector is also paired with the selector of the same name
in OTHER's report of the same folder name (another model on the same questions): the records
are paired by position, and every pair must hold the same question.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from dynrag.eval.report import paired_table
from dynrag.eval.runner import PairedComparison, QuestionRecord, compare


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


def _records(folder: Path) -> list[QuestionRecord]:
    report = json.loads((folder / "report.json").read_text())
    return [QuestionRecord.model_validate(r) for r in report["records"]]


def against(folder: Path, other: Path) -> list[PairedComparison]:
    """Each dynamic selector of ``folder`` against the one of the same name in ``other``.

    The other report's selector is named ``against:<name>``. Records are paired by position
    (both reports read the same data file in order), so ids need not match; a pair that holds
    two different questions is an error.
    """
    mine, theirs = _records(folder), _records(other)
    comparisons: list[PairedComparison] = []
    names = dict.fromkeys(r.selector for r in mine if r.selector.startswith("dynamic"))
    for name in names:
        a = [r for r in mine if r.selector == name]
        b = [r for r in theirs if r.selector == name]
        if not b:
            continue
        if [r.question for r in a] != [r.question for r in b]:
            raise ValueError(f"{folder} and {other} hold other questions for {name}")
        paired = [
            r.model_copy(update={"selector": f"against:{name}", "id": m.id})
            for m, r in zip(a, b, strict=True)
        ]
        comparisons += [c for c in compare(a + paired) if c.baseline == f"against:{name}"]
    return comparisons


def main() -> None:
    """Print the tables of every report under the folder given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a folder of `dynrag eval` report folders")
    parser.add_argument(
        "--against", type=Path, help="pair each dynamic selector with this folder's, by name"
    )
    args = parser.parse_args()
    for folder in sorted(p.parent for p in args.root.glob("*/report.json")):
        print(f"### {folder.name}\n\n{table(folder)}\n")
        if args.against and (args.against / folder.name / "report.json").exists():
            paired = against(folder, args.against / folder.name)
            print(f"against {args.against / folder.name} (sel F1):\n\n{paired_table(paired)}\n")


if __name__ == "__main__":
    main()
