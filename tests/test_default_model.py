"""The bundled trained reranker: in the package, no training step, the default everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from dynrag import DynamicReranker
from dynrag.core.loading import DEFAULT_MODEL, ModelConfig, resolve_model
from dynrag.eval.metrics import selection_prf

BUNDLED = "dynrag-smollm2-135m"
MIN_SELECTION_F1 = 0.5
"""Two random picks of 10 average 0.2; the hybrid-presorted model scored 0.74 on validation
questions 1-50 (README, "The bundled reranker"). This guards against regressions."""


def test_default_is_the_trained_bundled_model() -> None:
    from dynrag.cli import build_parser
    from langchain_dynrag import DynamicRAGRerank as LCRerank
    from llama_index_dynrag import DynamicRAGRerank as LIRerank

    assert DEFAULT_MODEL == BUNDLED
    assert LIRerank.model_fields["model"].default == BUNDLED
    assert LCRerank.model_fields["model"].default == BUNDLED
    for command in (["demo"], ["rerank", "--input", "x", "--output", "y"]):
        assert build_parser().parse_args(command).model == BUNDLED
    resolved = resolve_model(BUNDLED)
    assert resolved.source == "bundled"
    config = ModelConfig.read(resolved.path)
    assert config is not None
    assert config.adapter
    assert config.base_model == "smollm2-135m-instruct"
    assert (resolved.path / "NOTICE").is_file()
    assert (resolved.path / "adapter_model.safetensors").stat().st_size < 20_000_000


@pytest.mark.slow
def test_trained_model_selects_on_unseen_validation_questions(hotpot_val: list[Any]) -> None:
    rr = DynamicReranker.from_pretrained(BUNDLED)
    questions = hotpot_val[50:62]  # validation questions: never trained on
    sels = rr.rerank_batch([q["question"] for q in questions], [q["passages"] for q in questions])
    ks = [s.k for s in sels]
    f1 = [selection_prf(s.indices, q["gold"])[2] for s, q in zip(sels, questions, strict=True)]
    assert sum(k > 0 for k in ks) >= 9, ks  # it selects, where the untrained base says None
    assert max(ks) <= 4  # the largest k it was trained on, recorded in its config
    assert config_presort() == "hybrid"  # trained on BM25 + MiniLM ordered candidates
    assert sum(f1) / len(f1) >= MIN_SELECTION_F1, f1


def config_presort() -> str | None:
    config = ModelConfig.read(resolve_model(BUNDLED).path)
    assert config is not None
    return config.presort
