"""What users of the frameworks' rerankers type works here too (issue 34, items 4-7)."""

from __future__ import annotations

import copy
import logging
import pickle
from typing import Any

import pytest

from dynrag import GenerativeReranker, Reranker, SelectionStatus


@pytest.fixture(scope="module")
def default() -> Reranker:
    return Reranker.from_pretrained("dynrag-minilm-cut")


def test_status_prints_as_its_value(default: Reranker) -> None:
    sel = default.rerank("Who wrote Hamlet?", ["Hamlet is a play by Shakespeare.", "Paris."])
    assert str(sel.status) in {"ok", "none", "repaired", "fallback"}
    assert f"{SelectionStatus.OK}" == "ok"


def test_langchain_takes_top_n_and_both_adapters_read_it(default: Reranker) -> None:
    from langchain_dynrag import DynamicRAGRerank as LangChainRerank
    from llama_index_dynrag import DynamicRAGRerank as LlamaRerank

    lc = LangChainRerank(reranker=default, top_n=3)
    assert (lc.max_k, lc.top_n) == (3, 3)
    li = LlamaRerank(default, top_n=2)
    assert (li.max_k, li.top_n) == (2, 2)
    with pytest.raises(ValueError, match=r"top_n \(3\) and max_k \(2\) differ"):
        LangChainRerank(reranker=default, top_n=3, max_k=2)


def test_llamaindex_options_are_keywords(default: Reranker) -> None:
    from llama_index_dynrag import DynamicRAGRerank

    with pytest.raises(TypeError, match="keyword options"):
        DynamicRAGRerank(3)  # type: ignore[arg-type]


def _nodes(hotpot_val: list[Any]) -> tuple[str, list[Any]]:
    from llama_index.core.schema import NodeWithScore, TextNode

    ex = hotpot_val[0]
    nodes = [
        NodeWithScore(node=TextNode(text=p["text"], metadata={"title": p["title"]}), score=0.5)
        for p in ex["passages"]
    ]
    return ex["question"], nodes


def test_both_adapters_deepcopy_and_pickle(
    default: Reranker, hotpot_val: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import QueryBundle

    from langchain_dynrag import DynamicRAGRerank as LangChainRerank
    from llama_index_dynrag import DynamicRAGRerank as LlamaRerank

    query, nodes = _nodes(hotpot_val)
    li = LlamaRerank(default, min_k=1, max_k=3)
    want = [n.node.get_content() for n in li.postprocess_nodes(nodes, QueryBundle(query))]
    copied = copy.deepcopy(li)
    assert copied.reranker is li.reranker  # the model is shared, not copied
    with caplog.at_level(logging.WARNING):
        restored = pickle.loads(pickle.dumps(li))
    assert "unpickleable" not in caplog.text
    assert (restored.min_k, restored.max_k, restored.model) == (1, 3, "dynrag-minilm-cut")
    for other in (copied, restored):
        got = other.postprocess_nodes(nodes, QueryBundle(query))
        assert [n.node.get_content() for n in got] == want

    docs = [Document(page_content=n.node.get_content(), metadata=n.node.metadata) for n in nodes]
    lc = LangChainRerank(reranker=default, min_k=1, max_k=3)
    want_docs = [d.page_content for d in lc.compress_documents(docs, query)]
    assert want_docs == want
    for other in (copy.deepcopy(lc), pickle.loads(pickle.dumps(lc))):
        assert [d.page_content for d in other.compress_documents(docs, query)] == want


def test_a_reranker_built_in_process_is_not_pickled_as_another(
    tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    from langchain_dynrag import DynamicRAGRerank

    built = GenerativeReranker(tiny_reranker.backend)  # no name: it cannot be loaded again
    compressor = DynamicRAGRerank(reranker=built)
    assert copy.deepcopy(compressor).reranker is built
    with pytest.raises(pickle.PicklingError, match="could not load it again"):
        pickle.dumps(compressor)


def test_what_the_model_decided_reaches_the_caller(
    default: Reranker, hotpot_val: list[Any]
) -> None:
    from fastapi.testclient import TestClient
    from llama_index.core.schema import QueryBundle

    from dynrag.serve.app import create_app
    from llama_index_dynrag import DynamicRAGRerank

    query, nodes = _nodes(hotpot_val)
    passages = [{"title": n.node.metadata["title"], "text": n.node.get_content()} for n in nodes]
    sel = default.rerank(query, passages)
    out = DynamicRAGRerank(default).postprocess_nodes(nodes, QueryBundle(query))
    assert out
    assert all(n.node.metadata["dynrag_stop_probability"] == sel.stop_probability for n in out)
    assert 0.0 <= out[0].node.metadata["dynrag_stop_probability"] <= 1.0
    with TestClient(create_app(default)) as client:
        body = {"query": query, "documents": passages}
        data = client.post("/v1/rerank", json=body).json()
    assert data["status"] == sel.status.value
    assert data["stop_probability"] == pytest.approx(sel.stop_probability)
