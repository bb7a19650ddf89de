"""The README's result tables for the default reranker are the numbers in the committed reports.

`scripts/eval_minilm_cut.sh` writes the reports. This checks the selection F1 of every cell of
the main results table, the draws table with its mean, and the paired table (differences,
intervals, wins/ties/losses and that the baseline named is the best), so those tables cannot
drift from the reports. Intervals and k in the main table, the other tables and the prose are
not checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dynrag.eval.runner import QuestionRecord, compare

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# the draws table lives in the research log, linked from the README
RECIPE_LOG = (ROOT / "docs" / "minilm-cut-recipe.md").read_text(encoding="utf-8")
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
    report = json.loads((ROOT / "results" / folder / "report.json").read_text())
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
            value = _sel_f1(f"minilm-cut/{folder}")[name]
            assert float(NUMBER.findall(cell)[0]) == pytest.approx(value, abs=5e-4), (name, folder)
            checked += 1
    assert checked >= 50


DRAWS = {
    "seed 0": ("minilm-cut-ens", ["val", "retrieved", "2wiki", "musique"]),
    "seed 1": ("minilm-cut-seed1", ["val", "retrieved", "2wiki", "musique"]),
    "seed 2": ("minilm-cut-seed2", SETS[:4]),
    "seed 3 (shipped)": ("minilm-cut", SETS[:4]),
    "earlier weights (unseeded)": ("minilm-cut-unseeded", SETS[:4]),
}
MEAN_ROW = "mean of the four"


def test_draws_table_and_its_mean() -> None:
    rows = {cells[0]: cells[1:] for cells in _table("draw", RECIPE_LOG)}
    assert set(rows) == {*DRAWS, MEAN_ROW}
    seen: dict[str, list[list[float]]] = {}
    for draw, (root, folders) in DRAWS.items():
        values = []
        for folder, cell in zip(folders, rows[draw], strict=True):
            means = _sel_f1(f"{root}/{folder}")
            numbers = [float(x) for x in NUMBER.findall(cell)]
            assert numbers[0] == pytest.approx(means["dynamic[encoder-bc/checkpoint]"], abs=5e-4)
            if folder.endswith("retrieved"):
                assert numbers[1] == pytest.approx(means["scorer-threshold:0.7"], abs=5e-4)
            values.append(numbers)
        seen[draw] = values
    seeds = [d for d in DRAWS if d.startswith("seed")]
    for i, cell in enumerate(rows[MEAN_ROW]):
        numbers = [float(x) for x in NUMBER.findall(cell)]
        for j, number in enumerate(numbers):
            mean = sum(seen[d][i][j] for d in seeds) / len(seeds)
            assert number == pytest.approx(mean, abs=1e-3)


def test_paired_table() -> None:
    folders = dict(
        zip(
            ["HotpotQA val", "retrieved", "2Wiki held-out", "MuSiQue held-out", "written"],
            SETS,
            strict=True,
        )
    )
    rows = _table("set")
    assert [r[0] for r in rows] == list(folders)
    for name, baseline, difference, wtl in rows:
        report = json.loads(
            (ROOT / "results/minilm-cut" / folders[name] / "report.json").read_text()
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
        means = _sel_f1(f"minilm-cut/{folders[name]}")
        best = max(
            (n for n in means if not n.startswith("dynamic") and n != "oracle"), key=means.get
        )
        assert baseline == best
