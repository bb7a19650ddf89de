from __future__ import annotations

from typing import Any

import pytest

from dynrag import Passage, SelectionPolicy, SelectionStatus
from dynrag.core.generative.parsing import parse_selection
from dynrag.core.types import to_passages

PASSAGES = [Passage(text=f"passage {i} " + "word " * (10 * (i + 1))) for i in range(6)]


def words(passage: Passage) -> int:
    return len(passage.text.split())


def test_default_keeps_the_model_choice() -> None:
    out = SelectionPolicy().apply(parse_selection("[3], [1]", 6), PASSAGES)
    assert out.indices == [2, 0]
    assert out.status == SelectionStatus.OK


def test_max_k_cuts_the_tail() -> None:
    out = SelectionPolicy(max_k=2).apply(parse_selection("[3], [1], [5]", 6), PASSAGES)
    assert out.indices == [2, 0]
    assert out.status == SelectionStatus.REPAIRED


def test_min_k_adds_in_retrieval_order() -> None:
    out = SelectionPolicy(min_k=3).apply(parse_selection("[3]", 6), PASSAGES)
    assert out.indices == [2, 0, 1]
    assert out.status == SelectionStatus.REPAIRED


def test_none_is_empty_when_allowed() -> None:
    out = SelectionPolicy().apply(parse_selection("None", 6), PASSAGES)
    assert out.indices == []
    assert out.status == SelectionStatus.NONE


def test_none_falls_back_when_empty_not_allowed(caplog: pytest.LogCaptureFixture) -> None:
    out = SelectionPolicy(allow_empty=False, fallback_k=2).apply(
        parse_selection("None", 6), PASSAGES
    )
    assert out.indices == [0, 1]
    assert out.status == SelectionStatus.FALLBACK
    assert "empty selection not allowed" in caplog.text


def test_unparseable_falls_back_to_all_by_default(caplog: pytest.LogCaptureFixture) -> None:
    out = SelectionPolicy().apply(parse_selection("no idea", 6), PASSAGES)
    assert out.indices == list(range(6))
    assert out.status == SelectionStatus.FALLBACK
    assert "unparseable" in caplog.text


def test_fallback_respects_max_k() -> None:
    out = SelectionPolicy(max_k=3).apply(parse_selection("??", 6), PASSAGES)
    assert out.indices == [0, 1, 2]


def test_token_budget_trims_the_tail_but_not_below_min_k() -> None:
    parsed = parse_selection("[1], [2], [3]", 6)  # costs 12, 22, 32 words
    out = SelectionPolicy(token_budget=40).apply(parsed, PASSAGES, words)
    assert out.indices == [0, 1]
    assert out.status == SelectionStatus.REPAIRED
    out = SelectionPolicy(token_budget=5, min_k=1).apply(parsed, PASSAGES, words)
    assert out.indices == [0]


def test_token_budget_needs_a_counter() -> None:
    with pytest.raises(ValueError, match="count_tokens"):
        SelectionPolicy(token_budget=10).apply(parse_selection("[1]", 6), PASSAGES)


def test_inconsistent_bounds_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_k"):
        SelectionPolicy(min_k=3, max_k=2)


def test_fallback_log_names_what_was_finally_kept(caplog: pytest.LogCaptureFixture) -> None:
    # Issue 19 item 5: the warning said "first 10" while max_k returned 4.
    ten = [Passage(text=f"p{i}") for i in range(10)]
    out = SelectionPolicy(max_k=4).apply(parse_selection("garbage", 10), ten)
    assert out.indices == [0, 1, 2, 3]
    assert out.status == SelectionStatus.FALLBACK
    assert "fell back to 4 of 10 candidates" in caplog.text
    assert "max_k: cut 10 -> 4" in caplog.text


@pytest.mark.parametrize("text", ["[1], [2]", "None", "garbage"])
def test_token_budget_never_empties_a_selection_that_may_not_be_empty(text: str) -> None:
    # Issue 19 item 7: token_budget=1, allow_empty=False gave k = 0.
    policy = SelectionPolicy(token_budget=1, allow_empty=False)
    out = policy.apply(parse_selection(text, 6), PASSAGES, words)
    assert len(out.indices) == 1
    out = SelectionPolicy(token_budget=1, min_k=2).apply(parse_selection(text, 6), PASSAGES, words)
    assert len(out.indices) == 2


def test_merged_policy_is_validated() -> None:
    # Issue 19 item 4: model_copy skipped validation, so min_k 6 over max_k 4 returned 6.
    with pytest.raises(ValueError, match="min_k"):
        SelectionPolicy(max_k=4).merged(min_k=6)
    assert SelectionPolicy(max_k=4).merged(min_k=2) == SelectionPolicy(max_k=4, min_k=2)


def test_max_k_zero_with_empty_forbidden_is_rejected() -> None:
    with pytest.raises(ValueError, match="allow_empty"):
        SelectionPolicy(max_k=0, allow_empty=False)


def test_a_repeated_text_never_takes_two_places() -> None:
    # Issue 36 item 12: with every passage given twice, most selections held one text twice.
    passages = to_passages(["Paris is in France.", "  paris IS in france. ", "Berlin.", "Rome."])
    policy = SelectionPolicy()
    out = policy.apply(parse_selection("[1], [2], [3]", 4), passages)
    assert out.indices == [0, 2]
    assert out.status == SelectionStatus.REPAIRED
    assert any("1 repeats 0" in note for note in out.notes)
    filled = SelectionPolicy(min_k=3).apply(parse_selection("[2]", 4), passages)
    assert filled.indices == [1, 2, 3]  # min_k adds the next distinct texts, not the copy
    fallback = SelectionPolicy(fallback_k=3).apply(parse_selection("???", 4), passages)
    assert fallback.indices == [0, 2]


def test_no_family_chooses_a_duplicate(tiny_reranker: Any, hotpot_val: list[Any]) -> None:
    from dynrag import Reranker

    encoder = Reranker.from_pretrained("dynrag-minilm-cut")
    for rr in (encoder, tiny_reranker):
        for ex in hotpot_val[:10]:
            doubled = ex["passages"] + ex["passages"]
            sel = rr.rerank(ex["question"], doubled, policy=SelectionPolicy(min_k=2))
            texts = [p.text for p in sel.passages]
            assert len(texts) == len(set(texts)) >= 2, (rr.kind, sel.indices)
