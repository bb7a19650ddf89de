"""The result tables of the default reranker are the numbers in the committed reports.

`release/eval_default.sh` writes the reports (release/reports/dynrag-minilm-cut/). This checks the
selection F1 of every cell of the README's main results table, and the paired table of
docs/results.md (differences, intervals, wins/ties/losses and that the baseline named is the
best), so those tables cannot drift from the reports. Intervals and k in the main table, the
other tables and the prose are not checked. The draws table of the research log is checked in
research/tests/test_recipe_log.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dynrag.eval.runner import QuestionRecord, compare

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# the paired table lives in docs/results.md, linked from the README
RESULTS_DOC = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
REPORTS = ROOT / "release" / "reports"
NUMBER = re.compile(r"[+-]?\d+\.\d+")


def _table(first_header: str, text: str = README) -> list[list[str]]:
    """The rows (cells, markup stripped) of the table in ``text`` whose first header is given."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("**", "") for c in line.strip("|").split("|")])
    return rows


def _sel_f1(folder: str) -> dict[str, float]:
    report = json.loads((REPORTS / folder / "report.json").read_text())
    return {name: s["means"]["sel_f1"] for name, s in report["summary"].items()}


ROW_NAMES = {
    "dynamic, BC (shipped)": "dynamic[encoder-bc/checkpoint]",
    "dynamic, BC + RL": "dynamic[encoder-rl/checkpoint]",
    "hybrid-k:2 (= `dynrag-smollm2-135m`)": "hybrid-k:2",
}
SETS = ["hotpotqa-val", "hotpotqa-retrieved", "2wiki-heldout", "musique-heldout", "heldout-written"]


def test_main_results_table() -> None:
    rows = _table("selector")
    assert len(rows) >= 10
    checked = 0
    for cells in rows:
        name = ROW_NAMES.get(cells[0], cells[0])
        for folder, cell in zip(SETS, cells[1:], strict=True):
            value = _sel_f1(f"dynrag-minilm-cut/{folder}")[name]
            assert float(NUMBER.findall(cell)[0]) == pytest.approx(value, abs=5e-4), (name, folder)
            checked += 1
    assert checked >= 50


def test_paired_table() -> None:
    folders = dict(
        zip(
            ["HotpotQA val", "retrieved", "2Wiki held-out", "MuSiQue held-out", "written"],
            SETS,
            strict=True,
        )
    )
    rows = _table("set", RESULTS_DOC)
    assert [r[0] for r in rows] == list(folders)
    for name, baseline, difference, wtl in rows:
        report = json.loads(
            (REPORTS / "dynrag-minilm-cut" / folders[name] / "report.json").read_text()
        )
        records = [QuestionRecord.model_validate(r) for r in report["records"]]
        (c,) = [
            c
            for c in compare(records)
            if c.selector == "dynamic[encoder-bc/checkpoint]" and c.baseline == baseline
        ]
        mean, low, high = (float(x) for x in NUMBER.findall(difference))
        assert (mean, low, high) == pytest.approx((c.mean_difference, *c.ci95), abs=5e-4)
        assert wtl == f"{c.wins}/{c.ties}/{c.losses}"
        # and the baseline named is the best one of that set
        means = _sel_f1(f"dynrag-minilm-cut/{folders[name]}")
        best = max(
            (n for n in means if not n.startswith("dynamic") and n != "oracle"), key=means.get
        )
        assert baseline == best
