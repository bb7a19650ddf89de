"""The vLLM backend: runs only where vllm and CUDA are importable (never on our CI)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from dynrag.core.generative.backends.base import GrammarSpec
from dynrag.core.generative.constrained import selection_regex
from dynrag.core.generative.prompts import DYNAMICRAG_V1


def _vllm_ready() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def test_selection_regex_is_the_grammar() -> None:
    import re

    pattern = selection_regex(GrammarSpec(DYNAMICRAG_V1, 12, max_k=3, min_k=1, allow_none=False))
    assert re.fullmatch(pattern, "[12], [3], [1]")
    assert not re.fullmatch(pattern, "None")
    assert not re.fullmatch(pattern, "[13]")
    assert not re.fullmatch(pattern, "[1], [2], [3], [4]")
    assert re.fullmatch(selection_regex(GrammarSpec(DYNAMICRAG_V1, 5)), "None")


@pytest.mark.skipif(not _vllm_ready(), reason="vllm and a CUDA GPU are needed")
def test_vllm_reranks_with_structured_output(hotpot_val: list[Any]) -> None:
    from dynrag import DynamicReranker

    rr = DynamicReranker.from_pretrained(
        "smollm2-135m-instruct", backend="vllm", gpu_memory_utilization=0.3, min_k=1, max_k=3
    )
    sels = rr.rerank_batch(
        [e["question"] for e in hotpot_val[:4]], [e["passages"] for e in hotpot_val[:4]]
    )
    assert all(1 <= s.k <= 3 for s in sels)
