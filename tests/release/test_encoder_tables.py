"""release/encoder_tables.py --against: one model's records paired with another's, by position."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "encoder_tables", ROOT / "release" / "encoder_tables.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(selector: str, id_: str, question: str, sel_f1: float) -> dict[str, object]:
    return {
        "selector": selector, "id": id_, "question": question, "answers": ["a"], "gold": [0],
        "selected": [0], "k": 1, "prediction": None, "em": None, "f1": None, "accuracy": None,
        "gold_logprob": None, "context_tokens": 10, "rerank_seconds": 0.0,
        "generate_seconds": 0.0, "sel_f1": sel_f1,
    }  # fmt: skip


def _report(folder: Path, records: list[dict[str, object]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"records": records}))
    return folder


def test_pairs_by_position_not_by_id(tmp_path: Path) -> None:
    # The older report gave two questions the same id ("None"), the newer one unique ids: the
    # pairing must still match question to question.
    new = _report(
        tmp_path / "new",
        [
            _record("dynamic[bc]", "f:1", "q1", 1.0),
            _record("dynamic[bc]", "f:2", "q2", 0.5),
            _record("dynamic[bc]", "x", "q3", 0.0),
            _record("scorer-k:2", "f:1", "q1", 0.0),
        ],
    )
    old = _report(
        tmp_path / "old",
        [
            _record("dynamic[bc]", "None", "q1", 0.5),
            _record("dynamic[bc]", "None", "q2", 0.5),
            _record("dynamic[bc]", "x", "q3", 1.0),
            _record("dynamic[rl]", "x", "q3", 1.0),
        ],
    )
    [c] = _script().against(new, old)
    assert c.selector == "dynamic[bc]"
    assert c.baseline == "against:dynamic[bc]"
    assert c.questions == 3
    assert c.mean_difference == pytest.approx((0.5 + 0.0 - 1.0) / 3)
    assert (c.wins, c.ties, c.losses) == (1, 1, 1)
    low, high = c.ci95
    assert low <= c.mean_difference <= high


def test_other_questions_are_an_error(tmp_path: Path) -> None:
    a = _report(tmp_path / "a", [_record("dynamic[bc]", "1", "q1", 1.0)])
    b = _report(tmp_path / "b", [_record("dynamic[bc]", "1", "another question", 1.0)])
    with pytest.raises(ValueError, match="other questions"):
        _script().against(a, b)
