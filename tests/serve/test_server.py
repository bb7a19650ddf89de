"""A real dynrag server on loopback, called over HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from dynrag import DynamicReranker, SelectionPolicy
from dynrag.serve.app import create_app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny_reranker: Any) -> Iterator[str]:
    port = _free_port()
    app = create_app(tiny_reranker, max_body_bytes=200_000, max_documents=50)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    srv.should_exit = True
    thread.join(timeout=10)


def _body(ex: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"query": ex["question"], "documents": ex["passages"], **extra}


def test_rerank_matches_in_process(server: str, tiny_reranker: Any, hotpot_val: list[Any]) -> None:
    for ex in hotpot_val[:4]:
        response = httpx.post(f"{server}/v1/rerank", json=_body(ex, min_k=1, max_k=3), timeout=60)
        assert response.status_code == 200
        data = response.json()
        sel = tiny_reranker.rerank(
            ex["question"], ex["passages"], policy=SelectionPolicy(min_k=1, max_k=3)
        )
        assert [r["index"] for r in data["results"]] == sel.indices
        assert data["k"] == sel.k
        assert [r["relevance_score"] for r in data["results"]] == [
            1 / r for r in range(1, sel.k + 1)
        ]


def test_plain_string_documents_and_top_n(server: str) -> None:
    body = {"query": "which?", "documents": ["a", "b", "c"], "top_n": 1, "min_k": 1}
    data = httpx.post(f"{server}/v1/rerank", json=body, timeout=60).json()
    assert data["k"] == 1
    assert 0 <= data["results"][0]["index"] < 3


def test_health_and_openapi(server: str) -> None:
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    assert "/v1/rerank" in httpx.get(f"{server}/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 422),
        (b'{"documents": ["a"]}', 422),
        (b'{"query": "  ", "documents": ["a"]}', 422),
        (b'{"query": "q", "documents": [5]}', 422),
        (b'{"query": "q", "documents": ["a"], "min_k": 3, "max_k": 1}', 422),
    ],
)
def test_bad_requests_are_4xx(server: str, content: bytes, status: int) -> None:
    response = httpx.post(
        f"{server}/v1/rerank", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status


def test_limits(server: str) -> None:
    big = {"query": "q", "documents": ["x" * 1000] * 300}
    assert httpx.post(f"{server}/v1/rerank", json=big).status_code == 413
    many = {"query": "q", "documents": ["x"] * 60}
    assert httpx.post(f"{server}/v1/rerank", json=many).status_code == 422


def test_bounded_load_matches_in_process(
    server: str, tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    examples = [hotpot_val[i % 20] for i in range(200)]
    policy = SelectionPolicy(min_k=1, max_k=4)
    expected = {
        ex["question"]: tiny_reranker.rerank(ex["question"], ex["passages"], policy=policy).indices
        for ex in hotpot_val[:20]
    }

    async def load() -> list[tuple[str, list[int]]]:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(timeout=120) as client:

            async def one(ex: dict[str, Any]) -> tuple[str, list[int]]:
                async with limit:
                    r = await client.post(f"{server}/v1/rerank", json=_body(ex, min_k=1, max_k=4))
                    r.raise_for_status()
                    return ex["question"], [x["index"] for x in r.json()["results"]]

            return await asyncio.gather(*(one(ex) for ex in examples))

    results = asyncio.run(load())
    assert len(results) == 200
    assert all(indices == expected[q] for q, indices in results)


def test_remote_reranker_in_both_adapters(
    server: str, tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_dynrag import DynamicRAGRerank as LCRerank
    from llama_index_dynrag import DynamicRAGRerank as LIRerank

    remote = DynamicReranker.from_pretrained(server)
    ex = hotpot_val[2]
    policy = SelectionPolicy(min_k=1, max_k=3)
    local = tiny_reranker.rerank(ex["question"], ex["passages"], policy=policy)
    assert remote.rerank(ex["question"], ex["passages"], policy=policy).indices == local.indices
    assert (
        asyncio.run(remote.arerank(ex["question"], ex["passages"], policy=policy)).indices
        == local.indices
    )

    docs = [
        Document(page_content=p["text"], metadata={"title": p["title"]}) for p in ex["passages"]
    ]
    out = LCRerank(reranker=remote, min_k=1, max_k=3).compress_documents(docs, ex["question"])
    assert [d.page_content for d in out] == [ex["passages"][i]["text"] for i in local.indices]

    nodes = [
        NodeWithScore(node=TextNode(text=p["text"], metadata={"title": p["title"]}), score=0.5)
        for p in ex["passages"]
    ]
    li = LIRerank(reranker=remote, min_k=1, max_k=3)
    assert [
        n.node.get_content() for n in li.postprocess_nodes(nodes, query_str=ex["question"])
    ] == [ex["passages"][i]["text"] for i in local.indices]
    assert li.model == server


def test_dynrag_serve_command(
    tiny_model_dir: Any, tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    port = _free_port()
    script = shutil.which("dynrag") or str(Path(sys.executable).parent / "dynrag")
    proc = subprocess.Popen(
        [
            script,
            "serve",
            "--model",
            str(tiny_model_dir),
            "--max-passage-tokens",
            "64",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        for ex in hotpot_val[30:33]:
            body = _body(ex, min_k=1, max_k=2)
            got = httpx.post(f"{url}/v1/rerank", json=body, timeout=60).json()
            want = tiny_reranker.rerank(
                ex["question"], ex["passages"], policy=SelectionPolicy(min_k=1, max_k=2)
            )
            assert [r["index"] for r in got["results"]] == want.indices
    finally:
        proc.terminate()
        proc.wait(timeout=30)
