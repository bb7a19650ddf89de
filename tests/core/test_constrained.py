"""Constrained decoding on a tiny random model: whatever the weights, the output is valid."""

from __future__ import annotations

from typing import Any

import pytest

from dynrag import SelectionPolicy, SelectionStatus
from dynrag.core.generative.backends.base import GrammarSpec
from dynrag.core.generative.constrained import SelectionConstraint, SelectionGrammar
from dynrag.core.generative.parsing import parse_selection
from dynrag.core.generative.prompts import DYNAMICRAG_V1
from dynrag.core.types import ParseStatus


def test_grammar_accepts_merged_tokens() -> None:
    cons = SelectionConstraint(GrammarSpec(DYNAMICRAG_V1, 12))
    for piece in ["[", "1", "2", "],", " [", "3", "]"]:
        assert cons.accepts(piece), piece
        cons.advance(piece)
    assert cons.chosen == [11, 2]
    assert cons.can_end()
    assert not cons.accepts(", [12]")  # no id twice
    assert not cons.accepts(", [13]")  # out of range
    assert not cons.accepts(", [0]")
    assert cons.accepts(", [1]")


def test_grammar_caps_and_floors() -> None:
    cons = SelectionConstraint(GrammarSpec(DYNAMICRAG_V1, 5, max_k=1, min_k=1))
    assert not cons.accepts("None")  # min_k forbids the empty selection
    assert not cons.can_end()
    cons.advance("[4]")
    assert cons.can_end()
    assert not cons.accepts(",")  # max_k reached: only the end may follow


def test_none_is_a_whole_answer() -> None:
    cons = SelectionConstraint(GrammarSpec(DYNAMICRAG_V1, 5))
    cons.advance("None")
    assert cons.can_end()
    assert not cons.accepts(", [1]")


def test_grammar_candidates_come_from_the_vocabulary(tiny_tokenizer: Any) -> None:
    grammar = SelectionGrammar.for_tokenizer(tiny_tokenizer, DYNAMICRAG_V1)
    texts = set(grammar.text_of.values())
    assert {"[", "]", "],", " [", "1"} <= texts
    assert grammar is SelectionGrammar.for_tokenizer(tiny_tokenizer, DYNAMICRAG_V1)


def test_every_output_of_a_random_model_parses(tiny_reranker: Any, hotpot_val: list[Any]) -> None:
    for ex in hotpot_val[:12]:
        sel = tiny_reranker.rerank(ex["question"], ex["passages"])
        parsed = parse_selection(sel.raw_output, len(ex["passages"]))
        assert parsed.status in (ParseStatus.OK, ParseStatus.NONE), sel.raw_output
        assert sel.status in (SelectionStatus.OK, SelectionStatus.NONE)
        assert len(set(sel.indices)) == len(sel.indices)


@pytest.mark.parametrize(("min_k", "max_k"), [(1, 1), (2, 3), (3, None)])
def test_bounds_are_written_by_the_model(
    tiny_reranker: Any, hotpot_val: list[Any], min_k: int, max_k: int | None
) -> None:
    policy = SelectionPolicy(min_k=min_k, max_k=max_k)
    for ex in hotpot_val[:4]:
        sel = tiny_reranker.rerank(ex["question"], ex["passages"], policy=policy)
        # The constraint made the model itself write between min_k and max_k ids.
        parsed = parse_selection(sel.raw_output, len(ex["passages"]))
        assert parsed.status == ParseStatus.OK, sel.raw_output
        assert min_k <= len(parsed.indices) <= (max_k or 10)
        assert sel.status == SelectionStatus.OK


def test_unconstrained_random_model_gets_the_fallback(
    tiny_model_dir: Any, hotpot_val: list[Any]
) -> None:
    from dynrag import DynamicReranker

    rr = DynamicReranker.from_pretrained(tiny_model_dir, constrained=False, max_new_tokens=8)
    ex = hotpot_val[0]
    sel = rr.rerank(ex["question"], ex["passages"])
    # Free text from random weights is almost never a selection; either way nothing raises
    # and the result is a valid subset.
    assert sel.status in set(SelectionStatus)
    assert all(0 <= i < 10 for i in sel.indices)
    assert len(set(sel.indices)) == len(sel.indices)
