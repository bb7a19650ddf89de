from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynrag.core.generative.parsing import parse_selection
from dynrag.core.types import ParseStatus


def test_v1_grammar_is_one_based_in_model_order() -> None:
    result = parse_selection("[3], [1], [7]", 10)
    assert result.indices == [2, 0, 6]
    assert result.status == ParseStatus.OK


@pytest.mark.parametrize("text", ["None", "none", "NONE", " None.", '"None"', "none of them"])
def test_none_in_any_case(text: str) -> None:
    result = parse_selection(text, 5)
    assert result.status == ParseStatus.NONE
    assert result.indices == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[2] > [1]", [1, 0]),
        ("2, 1", [1, 0]),
        ("Document [2]", [1]),
        ("[Document 4], [Document 1]", [3, 0]),
        ("[3], [1] because [3] names the director and [5] is unrelated", [2, 0]),
        ("The relevant documents are [4] and [2].", [3, 1]),
        ("[ 2 ] , [ 5 ]", [1, 4]),
    ],
)
def test_common_deviations_are_repaired(text: str, expected: list[int]) -> None:
    result = parse_selection(text, 10)
    assert result.indices == expected
    assert result.status == ParseStatus.REPAIRED


def test_spacing_around_commas_is_still_the_grammar() -> None:
    result = parse_selection("[1],[2] ,[3]", 10)
    assert result.indices == [0, 1, 2]
    assert result.status == ParseStatus.OK


def test_duplicates_and_out_of_range_are_dropped() -> None:
    result = parse_selection("[0], [11], [3], [3], [2]", 10)
    assert result.indices == [2, 1]
    assert result.status == ParseStatus.REPAIRED
    assert any("duplicate" in note for note in result.notes)


@pytest.mark.parametrize("text", ["", "   ", "I cannot tell.", "[0]", "[99]", "9" * 5000])
def test_unusable_text_is_unparseable(text: str) -> None:
    result = parse_selection(text, 10)
    assert result.status == ParseStatus.UNPARSEABLE
    assert result.indices == []


def test_zero_candidates_makes_every_id_out_of_range() -> None:
    assert parse_selection("[1]", 0).status == ParseStatus.UNPARSEABLE


_selection_like = st.lists(
    st.one_of(
        st.integers(-5, 60).map(lambda i: f"[{i}]"),
        st.integers(0, 60).map(str),
        st.sampled_from([", ", " > ", ",", " and ", "Document ", "None", "none", "\n", "."]),
        st.text(max_size=8),
    ),
    max_size=20,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(text=st.one_of(st.text(max_size=200), _selection_like), n=st.integers(0, 50))
def test_never_raises_and_always_returns_a_valid_subset(text: str, n: int) -> None:
    result = parse_selection(text, n)
    assert len(result.indices) == len(set(result.indices))
    assert all(0 <= i < n for i in result.indices)
    if result.status in (ParseStatus.NONE, ParseStatus.UNPARSEABLE):
        assert result.indices == []
    else:
        assert result.indices


@settings(max_examples=1000, deadline=None)
@given(
    ids=st.lists(st.integers(1, 40), min_size=1, max_size=15, unique=True),
    n=st.integers(40, 60),
)
def test_canonical_output_round_trips(ids: list[int], n: int) -> None:
    text = ", ".join(f"[{i}]" for i in ids)
    result = parse_selection(text, n)
    assert result.indices == [i - 1 for i in ids]
    assert result.status == ParseStatus.OK
