"""The README's small config on the real SmolLM2: every stage, then the checkpoint everywhere."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dynrag import DynamicReranker
from dynrag.training.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_config_trains_smollm2_end_to_end(
    tmp_path: Path, hotpot_val: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from langchain_dynrag import DynamicRAGRerank as LCRerank
    from llama_index_dynrag import DynamicRAGRerank as LIRerank

    monkeypatch.chdir(REPO)  # the config's data paths are relative to the repository root
    start = time.perf_counter()
    code = main(
        ["run", "--config", "configs/smollm2-quick.yaml", "--run-dir", str(tmp_path / "run")]
    )
    assert code == 0
    minutes = (time.perf_counter() - start) / 60
    assert minutes < 20, f"the README promises well under 20 minutes; took {minutes:.1f}"
    ckpt = tmp_path / "run" / "dpo" / "checkpoint"
    ex = hotpot_val[0]
    sel = DynamicReranker.from_pretrained(ckpt).rerank(ex["question"], ex["passages"])
    assert sel.k == len(sel.indices)
    nodes = [NodeWithScore(node=TextNode(text=p["text"]), score=0.5) for p in ex["passages"]]
    out = LIRerank(model=str(ckpt), min_k=1).postprocess_nodes(nodes, QueryBundle(ex["question"]))
    assert 1 <= len(out) <= len(nodes)
    docs = [Document(page_content=p["text"]) for p in ex["passages"]]
    assert len(LCRerank(model=str(ckpt), min_k=1).compress_documents(docs, ex["question"])) >= 1
