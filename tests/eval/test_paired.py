"""`compare`: dynamic selectors against each baseline, question by question."""

from __future__ import annotations

import pytest

from dynrag.eval.report import paired_table
from dynrag.eval.runner import QuestionRecord, compare


def _record(selector: str, qid: str, sel_f1: float | None) -> QuestionRecord:
    return QuestionRecord(
        selector=selector,
        id=qid,
        question="q",
        answers=["a"],
        gold=[0] if sel_f1 is not None else None,
        selected=[0],
        k=1,
        prediction=None,
        em=None,
        f1=None,
        accuracy=None,
        gold_logprob=None,
        context_tokens=5,
        rerank_seconds=0.0,
        generate_seconds=0.0,
        sel_f1=sel_f1,
    )


def test_hand_worked_differences() -> None:
    records = [
        *(_record("dynamic", q, v) for q, v in [("a", 1.0), ("b", 0.5), ("c", 0.0), ("d", 1.0)]),
        *(_record("scorer-k:1", q, v) for q, v in [("a", 0.5), ("b", 0.5), ("c", 1.0), ("d", 0.5)]),
        *(_record("oracle", q, 1.0) for q in "abcd"),
        # a question the baseline did not see is left out of the pair
        _record("scorer-k:2", "a", 0.0),
    ]
    out = {(c.selector, c.baseline): c for c in compare(records)}
    assert set(out) == {("dynamic", "scorer-k:1"), ("dynamic", "scorer-k:2")}
    c = out[("dynamic", "scorer-k:1")]
    assert c.questions == 4
    assert c.mean_difference == pytest.approx((0.5 + 0.0 - 1.0 + 0.5) / 4)
    assert (c.wins, c.ties, c.losses) == (2, 1, 1)
    low, high = c.ci95
    assert -1.0 <= low <= c.mean_difference <= high <= 0.5
    one = out[("dynamic", "scorer-k:2")]
    assert (one.questions, one.mean_difference, one.ci95) == (1, 1.0, (1.0, 1.0))
    table = paired_table(list(out.values()))
    assert "| dynamic | scorer-k:1 | 4 | +0.000 [" in table
    assert "2/1/1" in table


def test_nothing_to_compare_without_gold() -> None:
    records = [_record("dynamic", "a", None), _record("all", "a", None)]
    assert compare(records) == []


def test_repeated_ids_pair_in_order() -> None:
    """Reports written before ids were unique repeat some; they pair by order of appearance."""
    records = [
        _record("dynamic", "None", 1.0),
        _record("dynamic", "None", 0.0),
        _record("all", "None", 0.5),
        _record("all", "None", 0.5),
    ]
    (c,) = compare(records)
    assert c.questions == 2
    assert (c.wins, c.ties, c.losses) == (1, 0, 1)
    assert c.mean_difference == 0.0
