"""A new model family is one module plus one registry line, and then runs everywhere unchanged.

The toy family below ("keep the passages that contain a word of the query") is registered here,
loaded through `DynamicReranker.from_pretrained` from a folder whose dynrag_config.json names it,
and run in both adapters, `dynrag rerank` and the server.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dynrag import DynamicReranker, Reranker, Selection, SelectionPolicy, SelectionStatus
from dynrag.core.families import available_families, get_family, register_family
from dynrag.core.loading import ModelConfig, ResolvedModel
from dynrag.core.policy import POLICY_FIELDS
from dynrag.core.types import ParseResult, ParseStatus, Passage

KIND = "keyword-test"


# -- the family: one class and its loader -----------------------------------------------------
class KeywordReranker(Reranker):
    kind = KIND

    def __init__(self, min_length: int, policy: SelectionPolicy | None = None) -> None:
        self.min_length = min_length
        self.policy = policy or SelectionPolicy()

    def _rerank_batch(
        self,
        queries: list[str],
        passages_per_query: list[list[Passage]],
        policy: SelectionPolicy,
    ) -> list[Selection]:
        # input arrives checked: non-blank queries, Passage objects
        out = []
        for query, items in zip(queries, passages_per_query, strict=True):
            words = {w for w in re.findall(r"\w+", query.lower()) if len(w) >= self.min_length}
            hits = [
                i for i, p in enumerate(items) if words & set(re.findall(r"\w+", p.text.lower()))
            ]
            parsed = ParseResult(indices=hits, status=ParseStatus.OK if hits else ParseStatus.NONE)
            outcome = policy.apply(parsed, items)
            out.append(
                Selection(
                    indices=outcome.indices,
                    passages=[items[i] for i in outcome.indices],
                    raw_output="",
                    status=outcome.status,
                    notes=outcome.notes,
                    num_candidates=len(items),
                )
            )
        return out


def load_keyword(resolved: ResolvedModel, **kwargs: Any) -> KeywordReranker:
    extra = resolved.config.model_extra or {}
    policy_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in POLICY_FIELDS}
    kwargs.pop("device", None)
    kwargs.pop("dtype", None)
    if kwargs:
        msg = f"the keyword family takes no {sorted(kwargs)}"
        raise TypeError(msg)
    policy = SelectionPolicy.for_model(resolved.config.max_k, **policy_kw)
    return KeywordReranker(int(extra.get("min_length", 4)), policy)


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    register_family(KIND, load_keyword, replace=True)  # the one registry line


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    ModelConfig(kind=KIND, min_length=5).write(tmp_path)
    return tmp_path


PASSAGES = [
    {"title": "Paris", "text": "Paris is the capital of France."},
    {"title": "Hamlet", "text": "Hamlet is a tragedy written by William Shakespeare."},
    {"title": "Berlin", "text": "Berlin is in Germany."},
]
QUERY = "Who wrote the tragedy Hamlet?"


def test_registry_lists_both_builtin_families_and_refuses_a_taken_name() -> None:
    # "url" is the HTTP client, registered by an entry point (core never names it)
    assert {"generative", "encoder", "url", KIND} <= set(available_families())
    with pytest.raises(ValueError, match="already registered"):
        register_family("generative", load_keyword)
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        get_family("nope")


def test_loads_through_from_pretrained_and_selects(folder: Path) -> None:
    rr = DynamicReranker.from_pretrained(folder)
    assert isinstance(rr, KeywordReranker)
    assert rr.name_or_path == str(folder)
    sel = rr.rerank(QUERY, PASSAGES)
    assert sel.indices == [1]
    assert sel.status == SelectionStatus.OK
    assert rr.rerank("zzzzz qqqqq", PASSAGES).k == 0
    with pytest.raises(TypeError, match="keyword family takes no"):
        Reranker.from_pretrained(folder, window_size=4)


def test_the_interface_checks_the_input_the_family_never_sees(folder: Path) -> None:
    rr = Reranker.from_pretrained(folder, max_k=1)
    assert rr.policy.max_k == 1
    with pytest.raises(ValueError, match="query is empty"):
        rr.rerank("  ", PASSAGES)
    with pytest.raises(TypeError, match="passage 1 is of type int"):
        rr.rerank(QUERY, ["fine", 3])
    with pytest.raises(ValueError, match="2 queries but 1 passage lists"):
        rr.rerank_batch([QUERY, QUERY], [PASSAGES])
    with pytest.raises(TypeError, match="use rerank"):
        rr.rerank_batch(QUERY, [PASSAGES])


def test_a_family_class_refuses_another_familys_model(folder: Path) -> None:
    from dynrag.core.encoder.model import EncoderReranker

    with pytest.raises(TypeError, match="is a 'keyword-test' model, not a EncoderReranker"):
        EncoderReranker.from_pretrained(folder)


def test_runs_in_both_adapters(folder: Path) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from langchain_dynrag import DynamicRAGRerank as LangChainRerank
    from llama_index_dynrag import DynamicRAGRerank as LlamaRerank

    nodes = [NodeWithScore(node=TextNode(text=p["text"]), score=0.5) for p in PASSAGES]
    out = LlamaRerank(model=str(folder)).postprocess_nodes(nodes, QueryBundle(QUERY))
    assert [n.node.get_content() for n in out] == [PASSAGES[1]["text"]]
    docs = [Document(page_content=p["text"]) for p in PASSAGES]
    kept = LangChainRerank(model=str(folder)).compress_documents(docs, QUERY)
    assert [d.page_content for d in kept] == [PASSAGES[1]["text"]]


def test_runs_in_dynrag_rerank(folder: Path, tmp_path: Path) -> None:
    from dynrag.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"query": QUERY, "passages": PASSAGES}) + "\n", encoding="utf-8")
    dst = tmp_path / "out.jsonl"
    assert main(["rerank", "--model", str(folder), "--input", str(src), "--output", str(dst)]) == 0
    row = json.loads(dst.read_text(encoding="utf-8"))
    assert row["selection"]["indices"] == [1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_runs_in_the_server_and_through_its_client(folder: Path) -> None:
    import uvicorn

    from dynrag.serve.app import create_app

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Reranker.from_pretrained(folder)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        body = {"query": QUERY, "documents": PASSAGES}
        data = httpx.post(f"{url}/v1/rerank", json=body, timeout=30).json()
        assert [r["index"] for r in data["results"]] == [1]
        client = Reranker.from_pretrained(url)
        assert client.rerank(QUERY, PASSAGES).indices == [1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
