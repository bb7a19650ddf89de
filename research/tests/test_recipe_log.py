"""The seeded draws table of research/minilm-cut-recipe.md is the numbers in the committed reports.

Each draw's reports are in research/results/ (the shipped seed-3 draw's in
release/reports/dynrag-minilm-cut/, written by `release/eval_default.sh`). This checks the selection F1 of every cell of the draws table (the
BC model's, and on the retrieved split the scorer's threshold 0.7 beside it) and the mean row,
so the table that picked the shipped draw cannot drift from the reports. Moved from
tests/test_readme_results.py with the recipe log; the assertions are unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

RESEARCH = Path(__file__).resolve().parents[1]
RECIPE_LOG = (RESEARCH / "minilm-cut-recipe.md").read_text(encoding="utf-8")
REPORTS = RESEARCH / "results"
NUMBER = re.compile(r"[+-]?\d+\.\d+")
SETS = ["hotpotqa-val", "hotpotqa-retrieved", "2wiki-heldout", "musique-heldout"]


def _table(first_header: str, text: str) -> list[list[str]]:
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


DRAWS = {
    "seed 0": ("minilm-cut-ens", ["val", "retrieved", "2wiki", "musique"]),
    "seed 1": ("minilm-cut-seed1", ["val", "retrieved", "2wiki", "musique"]),
    "seed 2": ("minilm-cut-seed2", SETS),
    "seed 3 (shipped)": ("../../release/reports/dynrag-minilm-cut", SETS),
    "earlier weights (unseeded)": ("minilm-cut-unseeded", SETS),
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
