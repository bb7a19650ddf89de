"""The presorts (BM25, MiniLM, hybrid): order, idempotence, selections in the caller's list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dynrag import DynamicReranker, GenerativeReranker, Passage
from dynrag.core.generative.prompts import get_prompt_format
from dynrag.core.loading import ModelConfig
from dynrag.core.presort import (
    PRESORT_METHODS,
    PRESORT_SCORE_KEY,
    bm25_scores,
    hybrid_scores,
    minilm_scores,
    presort_order,
    presort_ranking,
    with_presort_scores,
)

from .test_reranker import KeywordBackend

QUERY = "Which river flows through the capital of France?"
PASSAGES = [
    Passage(title="Berlin", text="Berlin is the capital of Germany. GOLD2"),
    Passage(title="Cooking", text="A recipe for bread with flour and water."),
    Passage(title="Seine", text="The Seine is a river that flows through Paris. GOLD1"),
    Passage(title="Paris", text="Paris is the capital of France."),
]


def test_bm25_puts_the_matching_passages_first() -> None:
    order = presort_order("bm25", QUERY, PASSAGES)
    assert sorted(order) == [0, 1, 2, 3]
    assert order[-1] == 1  # shares no word with the query
    assert order[0] in (2, 3)


def test_scores_do_not_depend_on_order_and_presort_is_idempotent() -> None:
    texts = [f"{p.title}. {p.text}" for p in PASSAGES]
    forward = bm25_scores(QUERY, texts)
    backward = bm25_scores(QUERY, texts[::-1])
    assert forward == pytest.approx(backward[::-1])
    order = presort_order("bm25", QUERY, PASSAGES)
    presorted = [PASSAGES[i] for i in order]
    assert presort_order("bm25", QUERY, presorted) == [0, 1, 2, 3]


def test_none_keeps_order_and_unknown_methods_are_refused() -> None:
    assert presort_order(None, QUERY, PASSAGES) == [0, 1, 2, 3]
    assert bm25_scores(QUERY, []) == []
    with pytest.raises(ValueError, match="unknown presort 'tfidf'"):
        presort_order("tfidf", QUERY, PASSAGES)
    with pytest.raises(ValueError, match="unknown presort"):
        GenerativeReranker(KeywordBackend(), presort="dense")


def _watched_backend() -> tuple[KeywordBackend, list[str]]:
    """A `KeywordBackend` and the list its prompts' user messages are recorded in."""
    backend = KeywordBackend()
    seen: list[str] = []
    generate = backend.generate

    def spy(requests: Any, params: Any) -> Any:
        seen.extend(r.messages[-1]["content"] for r in requests)
        return generate(requests, params)

    backend.generate = spy  # type: ignore[method-assign]
    return backend, seen


def test_the_model_reads_presorted_candidates_and_selections_index_the_callers_list() -> None:
    backend, seen = _watched_backend()
    sel = GenerativeReranker(backend, presort="bm25").rerank(QUERY, PASSAGES)
    order = presort_order("bm25", QUERY, PASSAGES)
    shown = [line for line in seen[0].splitlines() if ". Topic: " in line]
    assert [line.split("Topic: ")[1] for line in shown] == [PASSAGES[i].title for i in order]
    assert sel.indices == [2, 0]  # GOLD1 then GOLD2, positions in the caller's list
    assert [p.title for p in sel.passages] == ["Seine", "Berlin"]
    plain = GenerativeReranker(KeywordBackend()).rerank(QUERY, PASSAGES)
    assert plain.indices == sel.indices


def test_presort_matches_reranking_a_presorted_list(tiny_model_dir: Path) -> None:
    # A real (tiny) model: presorting inside the reranker = giving it the presorted list.
    rr = DynamicReranker.from_pretrained(tiny_model_dir, presort="bm25", max_k=3)
    plain = DynamicReranker.from_pretrained(tiny_model_dir, max_k=3)
    order = presort_order("bm25", QUERY, PASSAGES)
    sel = rr.rerank(QUERY, PASSAGES)
    ref = plain.rerank(QUERY, [PASSAGES[i] for i in order])
    assert sel.raw_output == ref.raw_output
    assert sel.indices == [order[i] for i in ref.indices]
    assert sel.passages == ref.passages


def test_a_models_config_turns_presort_on(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    ModelConfig(presort="hybrid").write(folder)
    assert json.loads((folder / "dynrag_config.json").read_text())["presort"] == "hybrid"
    assert DynamicReranker.from_pretrained(folder).presort == "hybrid"
    assert DynamicReranker.from_pretrained(folder, presort=None).presort is None
    assert DynamicReranker.from_pretrained(tiny_model_dir).presort is None


def test_a_query_with_nothing_to_match_keeps_the_order() -> None:
    # bm25s indexes no stopword or one-letter word: such queries (and candidates) score 0.
    assert bm25_scores("a ?", ["x", "y z"]) == [0.0, 0.0]
    assert bm25_scores("hello", ["", "hello there"])[0] == 0.0
    assert presort_order("bm25", "Is it?", PASSAGES) == [0, 1, 2, 3]
    sel = GenerativeReranker(KeywordBackend(), presort="bm25").rerank("Is it?", PASSAGES)
    assert sel.indices == [2, 0]


def test_bm25s_debug_lines_stay_out_of_an_info_log() -> None:
    import logging

    bm25_scores(QUERY, ["some text"])
    assert logging.getLogger("bm25s").level == logging.NOTSET  # inherits the application's


@pytest.mark.parametrize("method", ["minilm", "hybrid"])
def test_minilm_and_hybrid_put_the_matching_passages_first(method: str) -> None:
    order = presort_order(method, QUERY, PASSAGES)
    assert sorted(order) == [0, 1, 2, 3]
    assert order[0] in (2, 3)  # Seine / Paris
    assert order[-1] == 1  # bread recipe
    presorted = [PASSAGES[i] for i in order]
    assert presort_order(method, QUERY, presorted) == [0, 1, 2, 3]


def test_hybrid_is_the_sum_of_standardised_bm25_and_minilm_scores() -> None:
    texts = [f"{p.title}. {p.text}" for p in PASSAGES]

    def z(values: list[float]) -> list[float]:
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        return [(v - mean) / std for v in values]

    expected = [
        a + b
        for a, b in zip(z(bm25_scores(QUERY, texts)), z(minilm_scores(QUERY, texts)), strict=True)
    ]
    assert hybrid_scores(QUERY, texts) == pytest.approx(expected, abs=1e-5)
    backward = hybrid_scores(QUERY, texts[::-1])
    assert backward[::-1] == pytest.approx(hybrid_scores(QUERY, texts), abs=1e-5)
    # no lexical evidence: BM25 adds nothing, MiniLM alone orders
    only_semantic = hybrid_scores("a ?", texts)
    sem = z(minilm_scores("a ?", texts))
    assert only_semantic == pytest.approx(sem, abs=1e-5)
    assert hybrid_scores(QUERY, []) == []
    assert hybrid_scores(QUERY, ["same", "same"]) == [0.0, 0.0]


def test_every_presort_method_runs_in_the_reranker() -> None:
    assert set(PRESORT_METHODS) == {"bm25", "minilm", "hybrid"}
    for method in PRESORT_METHODS:
        sel = GenerativeReranker(KeywordBackend(), presort=method).rerank(QUERY, PASSAGES)
        assert sel.indices == [2, 0]


def test_presort_ranking_gives_each_passages_score_in_that_order() -> None:
    order, scores = presort_ranking("bm25", QUERY, PASSAGES)
    assert order == presort_order("bm25", QUERY, PASSAGES)
    raw = bm25_scores(QUERY, [f"{p.title}. {p.text}" for p in PASSAGES])
    assert scores == pytest.approx([raw[i] for i in order])
    assert scores == sorted(scores, reverse=True)
    assert presort_ranking(None, QUERY, PASSAGES) == ([0, 1, 2, 3], None)
    tagged = with_presort_scores(PASSAGES[:2], [1.5, -2.0])
    assert [p.metadata[PRESORT_SCORE_KEY] for p in tagged] == [1.5, -2.0]
    assert all(PRESORT_SCORE_KEY not in p.metadata for p in PASSAGES)  # copies only
    with pytest.raises(ValueError, match="shorter"):
        with_presort_scores(PASSAGES, [1.0])


def test_the_scored_format_shows_the_presort_score_beside_each_title() -> None:
    backend, seen = _watched_backend()
    rr = GenerativeReranker(backend, prompt_format="dynrag-scored-v1", presort="hybrid")
    sel = rr.rerank(QUERY, PASSAGES)
    order, scores = presort_ranking("hybrid", QUERY, PASSAGES)
    assert scores is not None
    shown = [line for line in seen[0].splitlines() if ". Topic: " in line]
    expected = [f"{PASSAGES[i].title} (score {s:.1f})" for i, s in zip(order, scores, strict=True)]
    assert [line.split("Topic: ")[1] for line in shown] == expected
    assert sel.indices == [2, 0]
    assert sel.passages == [PASSAGES[2], PASSAGES[0]]  # the caller's passages, no score added


def test_the_scored_format_needs_a_presort(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shows first-stage scores: give a presort"):
        GenerativeReranker(KeywordBackend(), prompt_format="dynrag-scored-v1")
    with pytest.raises(ValueError, match="passage 1 has none"):
        get_prompt_format("dynrag-scored-v1").messages(QUERY, PASSAGES)
    assert not get_prompt_format("dynamicrag-v1").uses_scores
    # a model trained on it records both, and loads with both
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    ModelConfig(prompt_format="dynrag-scored-v1", presort="bm25").write(folder)
    rr = DynamicReranker.from_pretrained(folder, max_k=2)
    assert (rr.prompt_format.name, rr.presort) == ("dynrag-scored-v1", "bm25")
    assert rr.rerank(QUERY, PASSAGES).k <= 2
    with pytest.raises(ValueError, match="give a presort"):
        DynamicReranker.from_pretrained(folder, presort=None)
