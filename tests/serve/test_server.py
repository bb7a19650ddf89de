"""A real dynrag server on loopback, called over HTTP."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serve_loopback import free_port, serving

from dynrag import DynamicReranker, GenerativeReranker, SelectionPolicy
from dynrag.serve.app import create_app


@pytest.fixture(scope="module")
def server(tiny_reranker: Any) -> Iterator[str]:
    with serving(tiny_reranker, max_body_bytes=200_000, max_documents=50) as url:
        yield url


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

    port = free_port()
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


# -- bad input (issue 19, items 1-4) ---------------------------------------------------------


def test_one_bad_request_does_not_fail_its_batch_mates(
    tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    # A request the reranker refuses (here a lone surrogate, which the tokenizer rejects; the
    # server's validation would stop it earlier) is batched with good ones.
    from dynrag.serve.batching import Batcher

    good = [(ex["question"], ex["passages"]) for ex in hotpot_val[:3]]
    bad = ("q", ["a\ud800b"])
    policy = tiny_reranker.policy

    async def run() -> list[Any]:
        batcher = Batcher(tiny_reranker, max_batch=8, wait_seconds=0.2, max_queue=16)
        task = asyncio.create_task(batcher.run())
        try:
            return await asyncio.gather(
                *(batcher.submit(q, d, policy) for q, d in [good[0], bad, good[1], good[2]]),
                return_exceptions=True,
            )
        finally:
            task.cancel()

    results = asyncio.run(run())
    assert isinstance(results[1], (TypeError, ValueError))
    for got, ex in zip([results[0], *results[2:]], hotpot_val[:3], strict=True):
        assert got.indices == tiny_reranker.rerank(ex["question"], ex["passages"]).indices


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"query": "q", "documents": ["a\\ud800b"]}', "documents[0]"),
        (b'{"query": "q\\udfff", "documents": ["a"]}', "query"),
        (b'{"query": "q", "documents": [{"title": "t", "text": "\\ud800"}]}', "document"),
    ],
)
def test_invalid_text_is_422_naming_the_field(server: str, content: bytes, field: str) -> None:
    response = httpx.post(
        f"{server}/v1/rerank", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert field in response.text
    assert "lone surrogate" in response.text


def _chunked_upload(url: str, total: int, chunk: int = 65536) -> tuple[int, int]:
    """POST ``total`` bytes chunked over a raw socket; (status, bytes sent before the answer)."""
    import select
    from urllib.parse import urlparse

    parsed = urlparse(url)
    sent = 0
    with socket.create_connection((parsed.hostname, parsed.port), timeout=30) as sock:
        head = (
            "POST /v1/rerank HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            "transfer-encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        piece = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered
                sock.sendall(piece)
                sent += chunk
            else:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection after answering
        answer = sock.recv(4096).decode(errors="replace")
    return int(answer.split()[1]), sent


def test_chunked_oversize_body_is_refused_before_it_is_read(server: str) -> None:
    # Issue 19 item 2: a chunked body was read whole before the 413.
    status, sent = _chunked_upload(server, 50_000_000)
    assert status == 413
    assert sent < 5_000_000  # refused near the 200 kB limit, not after 50 MB
    assert httpx.get(f"{server}/health").json()["status"] == "ok"


def test_chunked_body_under_the_limit_is_served(server: str) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"query": "which?", '
        yield b'"documents": ["a", "b"], "min_k": 1}'

    response = httpx.post(
        f"{server}/v1/rerank", content=body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["k"] >= 1


def test_long_query_and_title_are_capped(server: str) -> None:
    long_query = {"query": "why " * 2000, "documents": ["a"]}
    response = httpx.post(f"{server}/v1/rerank", json=long_query)
    assert response.status_code == 422
    assert "query" in response.text
    long_title = {"query": "q", "documents": [{"title": "t" * 2000, "text": "a"}]}
    response = httpx.post(f"{server}/v1/rerank", json=long_title)
    assert response.status_code == 422
    assert "documents[0].title" in response.text


def test_min_k_above_the_models_max_k_is_422(tiny_reranker: Any) -> None:
    # Issue 19 item 4: {"min_k": 6} over a model max_k of 4 returned k = 6.
    from fastapi.testclient import TestClient

    capped = GenerativeReranker(
        tiny_reranker.backend, max_passage_tokens=64, policy=SelectionPolicy(max_k=4)
    )
    docs = [f"passage {i}" for i in range(10)]
    with TestClient(create_app(capped)) as client:
        response = client.post("/v1/rerank", json={"query": "q", "documents": docs, "min_k": 6})
        assert response.status_code == 422
        assert "min_k (6) is larger than max_k (4)" in response.text
        assert "the model's own max_k" in response.text
        ok = client.post("/v1/rerank", json={"query": "q", "documents": docs, "min_k": 3})
        assert ok.status_code == 200
        assert 3 <= ok.json()["k"] <= 4
        lifted = {"query": "q", "documents": docs, "min_k": 6, "max_k": 6}
        assert client.post("/v1/rerank", json=lifted).json()["k"] == 6


def test_every_policy_option_reaches_the_server_and_through_the_client(
    server: str, tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    # The client used to send min_k/max_k only: allow_empty, fallback_k, token_budget were lost.
    ex = hotpot_val[3]
    body = _body(ex, min_k=0, max_k=5)
    assert httpx.post(f"{server}/v1/rerank", json={**body, "token_budget": 1}).json()["k"] == 0
    kept = httpx.post(
        f"{server}/v1/rerank", json={**body, "token_budget": 1, "allow_empty": False}
    ).json()
    assert kept["k"] == 1
    for policy in (
        SelectionPolicy(max_k=5, token_budget=1, allow_empty=False),
        SelectionPolicy(min_k=2, max_k=3, fallback_k=1),
        SelectionPolicy(max_k=4, token_budget=120),
    ):
        remote = DynamicReranker.from_pretrained(server, policy=policy)
        for ex in hotpot_val[3:6]:
            local = tiny_reranker.rerank(ex["question"], ex["passages"], policy=policy)
            got = remote.rerank(ex["question"], ex["passages"])
            assert (got.indices, got.status) == (local.indices, local.status), policy


def test_the_client_takes_the_served_models_own_policy(
    tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    # A client with no options used to send min_k=0/allow_empty=True, undoing the server's own.
    own = SelectionPolicy(min_k=1, max_k=3, allow_empty=False)
    served = GenerativeReranker(tiny_reranker.backend, max_passage_tokens=64, policy=own)
    with serving(served) as url:
        info = httpx.get(f"{url}/v1/model").json()
        assert info["kind"] == "generative"
        assert SelectionPolicy.model_validate(info["policy"]) == own
        client = DynamicReranker.from_pretrained(url)
        assert client.policy == own
        narrowed = DynamicReranker.from_pretrained(url, max_k=2)
        assert narrowed.policy == own.merged(max_k=2)
        for ex in hotpot_val[6:9]:
            local = served.rerank(ex["question"], ex["passages"])
            assert client.rerank(ex["question"], ex["passages"]).indices == local.indices
            two = narrowed.rerank(ex["question"], ex["passages"])
            assert (
                two.indices
                == served.rerank(ex["question"], ex["passages"], policy=narrowed.policy).indices
            )
        with pytest.raises(TypeError, match="does not take device"):
            DynamicReranker.from_pretrained(url, device="cpu")
        with pytest.raises(ValueError, match="not both"):
            DynamicReranker.from_pretrained(url, policy=own, max_k=2)
        docs = {"query": "q", "documents": ["a", "b"]}
        clash = httpx.post(f"{url}/v1/rerank", json={**docs, "top_n": 1, "max_k": 2})
        assert clash.status_code == 422
        assert "top_n (1) and max_k (2) differ" in clash.text


# -- mixed load (issue 19, permanent check) ----------------------------------------------------

RSS_GROWTH_BOUND = 150_000_000
"""The served process may grow by at most this much under the mixed load (it grew by 557 MB
buffering one 300 MB chunked upload before the fix)."""


@pytest.mark.slow  # about 50 s on 2 shared cores
def test_mixed_load_of_good_and_bad_requests(
    tiny_model_dir: Any, tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    """240 requests at concurrency 24 against `dynrag serve`, 10% of them bad."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import psutil

    port = free_port()
    script = shutil.which("dynrag") or str(Path(sys.executable).parent / "dynrag")
    proc = subprocess.Popen(
        [
            *(script, "serve", "--model", str(tiny_model_dir), "--max-passage-tokens", "64"),
            *("--port", str(port), "--max-body-bytes", "200000"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    policy = SelectionPolicy(min_k=1, max_k=4)
    examples = hotpot_val[:12]
    expected = {
        ex["question"]: tiny_reranker.rerank(ex["question"], ex["passages"], policy=policy).indices
        for ex in examples
    }
    json_headers = {"content-type": "application/json"}
    bad: list[tuple[str, Any, int]] = (
        [("json", b'{"query": "q", "documents": [', 422)] * 6
        + [("json", b'{"query": "q", "documents": ["a\\ud800"]}', 422)] * 6
        + [("json", b'{"query": "q", "documents": ["' + b"x" * 300_000 + b'"]}', 413)] * 6
        + [("chunked", 50_000_000, 413)] * 6
    )
    good = [("good", ex, 200) for ex in examples] * 18
    mixed = good + bad
    random.Random(0).shuffle(mixed)
    try:
        server = psutil.Process(proc.pid)
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        warm = httpx.post(f"{url}/v1/rerank", json=_body(examples[0], min_k=1, max_k=4))
        assert warm.status_code == 200
        baseline = server.memory_info().rss
        peak = baseline
        health: list[int] = []
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            with httpx.Client(timeout=30) as client:
                while not done.is_set():
                    peak = max(peak, server.memory_info().rss)
                    health.append(client.get(f"{url}/health").status_code)
                    time.sleep(0.1)

        watcher = threading.Thread(target=watch)
        watcher.start()

        async def load() -> list[tuple[str, Any, int, int, Any]]:
            limit = asyncio.Semaphore(24)
            async with httpx.AsyncClient(timeout=300) as client:

                async def one(kind: str, item: Any, want: int) -> tuple[str, Any, int, int, Any]:
                    async with limit:
                        if kind == "chunked":
                            status, _ = await asyncio.to_thread(_chunked_upload, url, item)
                            return kind, item, want, status, None
                        if kind == "good":
                            body = _body(item, min_k=1, max_k=4)
                            r = await client.post(f"{url}/v1/rerank", json=body)
                        else:
                            r = await client.post(
                                f"{url}/v1/rerank", content=item, headers=json_headers
                            )
                        return kind, item, want, r.status_code, r.json()

                return await asyncio.gather(*(one(*m) for m in mixed))

        try:
            results = asyncio.run(load())
        finally:
            done.set()
            watcher.join()
        assert len(results) == 240
        for kind, item, want, status, data in results:
            assert status == want, (kind, status, data)
            if kind == "good":
                assert [r["index"] for r in data["results"]] == expected[item["question"]]
        assert health
        assert set(health) == {200}
        assert peak - baseline < RSS_GROWTH_BOUND, (baseline, peak)
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
