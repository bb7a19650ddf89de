"""research/scripts/stop_ceiling.py: fixed-k and stopping-oracle selection F1 from reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RESEARCH = Path(__file__).resolve().parents[1]
SCRIPT = RESEARCH / "scripts" / "stop_ceiling.py"


def _run(report: Path, *selectors: str) -> list[list[str]]:
    args = [a for s in selectors for a in ("--selector", s)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(report), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()[2:]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_hand_worked_report(tmp_path: Path) -> None:
    records = [
        # one gold passage, ranked first: keep 1 (F1 1.0); first 2 -> F1 2/3
        {"selector": "s", "selected": [3, 5, 7], "gold": [3]},
        # no gold passage: only the empty prefix scores (1.0)
        {"selector": "s", "selected": [1, 2, 4], "gold": []},
        # two gold, ranked 1st and 3rd: first 3 -> P 2/3 R 1 F1 0.8; first 1 -> F1 2/3
        {"selector": "s", "selected": [0, 9, 8], "gold": [0, 8]},
        {"selector": "other", "selected": [0], "gold": [0]},
    ]
    report = tmp_path / "run" / "report.json"
    report.parent.mkdir()
    report.write_text(json.dumps({"records": records}))
    [row] = _run(report, "s")
    assert row[:3] == ["run", "s", "3"]
    first = [float(x) for x in row[3:7]]
    assert first == [
        round(1 / 3, 3),
        round((1 + 0 + 2 / 3) / 3, 3),
        round((2 / 3 + 0 + 0.5) / 3, 3),
        round((0.5 + 0 + 0.8) / 3, 3),
    ]
    assert float(row[7]) == round((1 + 1 + 0.8) / 3, 3)  # stop oracle
    assert float(row[8]) == round((1 + 0 + 3) / 3, 3)  # its mean k
    assert float(row[9]) == round((1 + 0 + 0.8) / 3, 3)  # k >= 1: the no-gold question scores 0
    assert row[10] == "0 gold: k=0 x1; 1 gold: k=1 x1; 2 gold: k=3 x1"


def test_unknown_selector_is_an_error(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"records": [{"selector": "s", "selected": [], "gold": []}]}))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(report), "--selector", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "no records of selector 'x'" in proc.stderr


def test_published_table_is_reproduced() -> None:
    report = RESEARCH / "results" / "hotpotqa-retrieved" / "report.json"
    [row] = _run(report, "hybrid-k:3")
    published = (RESEARCH / "results" / "stop-ceiling.md").read_text()
    assert "| " + " | ".join(row) + " |" in published
