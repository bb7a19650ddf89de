"""A real dynrag server on loopback, in a thread, for the serve tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from dynrag.serve.app import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, tries: int = 100) -> None:
    for _ in range(tries):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)


@contextmanager
def serving(
    reranker: Any, *, uvicorn_options: dict[str, Any] | None = None, **options: Any
) -> Iterator[str]:
    """``create_app(reranker, **options)`` served on a free port; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(reranker, **options),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **(uvicorn_options or {}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
