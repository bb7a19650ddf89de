"""The server sheds load instead of queueing without bound (issue 36, items 5, 11, 17)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from serve_loopback import free_port, serving, wait_healthy

from dynrag.core.interface import Reranker
from dynrag.core.policy import SelectionPolicy
from dynrag.core.types import Passage, Selection, SelectionStatus
from dynrag.serve.app import create_app


class SlowReranker(Reranker):
    """Keeps the first passage, after ``seconds`` per query; counts what it reranked."""

    kind = "slow-test"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.policy = SelectionPolicy()
        self.queries: list[str] = []

    def _rerank_batch(
        self, queries: list[str], passages_per_query: list[list[Passage]], policy: SelectionPolicy
    ) -> list[Selection]:
        out = []
        for query, passages in zip(queries, passages_per_query, strict=True):
            time.sleep(self.seconds)
            self.queries.append(query)
            out.append(
                Selection(
                    indices=[0],
                    passages=passages[:1],
                    status=SelectionStatus.OK,
                    num_candidates=len(passages),
                )
            )
        return out


def _body(i: int) -> dict[str, Any]:
    return {"query": f"q{i}", "documents": ["a", "b"]}


def test_past_the_queue_bound_requests_are_refused_at_once() -> None:
    slow = SlowReranker(0.3)
    with serving(slow, max_queue=2, max_batch=1, batch_wait_ms=0) as url:

        async def storm() -> list[tuple[int, float, dict[str, Any]]]:
            async with httpx.AsyncClient(timeout=60) as client:

                async def one(i: int) -> tuple[int, float, dict[str, Any]]:
                    start = time.perf_counter()
                    r = await client.post(f"{url}/v1/rerank", json=_body(i))
                    return r.status_code, time.perf_counter() - start, dict(r.headers)

                return await asyncio.gather(*(one(i) for i in range(12)))

        results = asyncio.run(storm())
        codes = [code for code, _, _ in results]
        assert set(codes) <= {200, 503}
        assert codes.count(503) >= 6  # at most 1 running + 2 waiting (+ the batch being formed)
        refused = [(s, h) for code, s, h in results if code == 503]
        assert all(seconds < 1.0 for seconds, _ in refused)  # answered at once, not queued
        assert all(h.get("retry-after") == "1" for _, h in refused)
        assert httpx.get(f"{url}/ready").json()["status"] == "ready"


def test_ready_says_saturated_while_the_queue_is_full() -> None:
    slow = SlowReranker(1.0)
    with serving(slow, max_queue=1, max_batch=1, batch_wait_ms=0) as url:

        def post(i: int) -> None:
            httpx.post(f"{url}/v1/rerank", json=_body(i), timeout=30)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.2)
        ready = httpx.get(f"{url}/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "saturated"
        for t in threads:
            t.join()
        assert httpx.get(f"{url}/ready").status_code == 200


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_work_for_a_client_that_went_away_is_dropped() -> None:
    slow = SlowReranker(2.0)
    errors = _Errors()
    logging.getLogger("uvicorn.error").addHandler(errors)
    with serving(slow, max_queue=32, max_batch=1, batch_wait_ms=0) as url:
        first = threading.Thread(
            target=lambda: httpx.post(f"{url}/v1/rerank", json=_body(0), timeout=30)
        )
        first.start()
        time.sleep(0.3)

        def give_up(i: int) -> None:  # a client that leaves while the model is busy
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{url}/v1/rerank", json=_body(i), timeout=0.3)

        quitters = [threading.Thread(target=give_up, args=(i,)) for i in range(1, 7)]
        for t in quitters:
            t.start()
        for t in quitters:
            t.join()
        first.join()
        start = time.perf_counter()
        assert httpx.post(f"{url}/v1/rerank", json=_body(99), timeout=30).status_code == 200
        assert time.perf_counter() - start < 3.5  # its own 2 s, not behind six abandoned ones
        assert slow.queries == ["q0", "q99"]
        assert httpx.get(f"{url}/ready").json()["dropped"] == 6
    logging.getLogger("uvicorn.error").removeHandler(errors)
    assert not errors.records  # a disconnect is not an "Exception in ASGI application"


def test_an_async_client_sees_the_413() -> None:
    with serving(SlowReranker(0.0), max_body_bytes=100_000) as url:

        async def post() -> int:
            async with httpx.AsyncClient(timeout=30) as client:
                big = {"query": "q", "documents": ["x" * 150_000]}
                return (await client.post(f"{url}/v1/rerank", json=big)).status_code

        assert [asyncio.run(post()) for _ in range(6)] == [413] * 6


def test_a_stalled_body_gets_408_and_frees_the_connection() -> None:
    with serving(SlowReranker(0.0), body_timeout=1.0) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"query": '
            )
            start = time.perf_counter()
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")
        assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "body",
    [
        {"query": "q", "documents": ["a"], "max_k": True},
        {"query": "q", "documents": ["a"], "max_k": "3"},
        {"query": "q", "documents": ["a"], "allow_empty": "yes"},
        {"query": "\u200b\u200b \u2060", "documents": ["a"]},
    ],
)
def test_loose_types_and_invisible_queries_are_422_in_one_shape(body: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(SlowReranker(0.0))) as client:
        response = client.post("/v1/rerank", json=body)
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert isinstance(detail, list)
        assert {"loc", "msg", "type"} <= set(detail[0])
        other = client.post("/v1/rerank", json={"query": "q", "documents": ["a"] * 500})
        assert isinstance(other.json()["detail"], list)


def test_a_chunked_header_over_an_unchunked_body_does_not_hang() -> None:
    with serving(SlowReranker(0.0), body_timeout=1.0) as url:
        host, port = url.removeprefix("http://").split(":")
        body = b'{"query": "q", "documents": ["a"]}'
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n".encode()
                + b"Transfer-Encoding: chunked\r\n\r\n"
                + body
            )
            start = time.perf_counter()
            answer = sock.recv(4096)
        assert answer.split(b" ")[1] in (b"400", b"408"), answer[:200]
        assert time.perf_counter() - start < 5


@pytest.mark.slow  # about 10 s on 2 shared cores
def test_dynrag_serve_under_disconnects_slow_clients_and_overload(
    tiny_model_dir: Any, hotpot_val: list[Any]
) -> None:
    """The permanent check of issue 36: a disconnect storm, stalled bodies and a burst past the
    queue bound against the real `dynrag serve`; every refusal is at once, RSS stays bounded."""
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
            *("--port", str(port), "--max-queue", "8", "--body-timeout", "2"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    bodies = [{"query": ex["question"], "documents": ex["passages"]} for ex in hotpot_val[:8]]
    try:
        wait_healthy(url, tries=600)  # a fresh process loads the model first
        assert httpx.post(f"{url}/v1/rerank", json=bodies[0], timeout=60).status_code == 200
        server = psutil.Process(proc.pid)
        baseline = server.memory_info().rss

        async def storm() -> list[tuple[int, float]]:
            async with httpx.AsyncClient(timeout=120) as client:

                async def quitter(i: int) -> None:  # gives up at once
                    with pytest.raises(httpx.TimeoutException):
                        await client.post(f"{url}/v1/rerank", json=bodies[i % 8], timeout=0.05)

                async def one(i: int) -> tuple[int, float]:
                    start = time.perf_counter()
                    r = await client.post(f"{url}/v1/rerank", json=bodies[i % 8])
                    return r.status_code, time.perf_counter() - start

                await asyncio.gather(*(quitter(i) for i in range(40)))
                for _ in range(100):  # the storm's requests are cancelled as their clients go
                    if (await client.get(f"{url}/ready")).json()["waiting"] == 0:
                        break
                    await asyncio.sleep(0.1)
                return await asyncio.gather(*(one(i) for i in range(80)))

        def stall() -> bytes:  # a body that never arrives
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(
                    b'POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{"q'
                )
                return sock.recv(4096)

        stalled: list[bytes] = []
        threads = [threading.Thread(target=lambda: stalled.append(stall())) for _ in range(20)]
        for t in threads:
            t.start()
        results = asyncio.run(storm())
        for t in threads:
            t.join()
        peak = server.memory_info().rss
        codes = [code for code, _ in results]
        assert set(codes) <= {200, 503}, codes
        assert codes.count(200) >= 4
        # whether the burst overflows depends on the machine's speed: the refusal itself is
        # tested deterministically in test_past_the_queue_bound_requests_are_refused_at_once
        # at once: well under a second alone; 2 s leaves room for a loaded CI machine
        assert all(seconds < 2.0 for code, seconds in results if code == 503)
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in stalled)
        assert httpx.get(f"{url}/ready", timeout=5).json()["dropped"] >= 1
        assert peak - baseline < 150_000_000, (baseline, peak)
        assert httpx.post(f"{url}/v1/rerank", json=bodies[1], timeout=60).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_headers_that_never_finish_do_not_hold_a_connection() -> None:
    from dynrag.serve.limits import header_timeout_protocol

    options = {"timeout_keep_alive": 1, "http": header_timeout_protocol()}
    with serving(SlowReranker(0.0), uvicorn_options=options) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\n")  # headers never finish
            start = time.perf_counter()
            assert sock.recv(4096) == b""  # closed by the server
            assert time.perf_counter() - start < 5
        body = {"query": "q", "documents": ["a"]}  # a whole request is served as before
        assert httpx.post(f"{url}/v1/rerank", json=body).status_code == 200
