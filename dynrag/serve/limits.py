"""ASGI middleware that bounds what one request may cost before the app sees it.

- A body over ``max_bytes`` gets 413 as soon as the limit is passed (a declared length at once),
  never held in memory; up to ``drain_bytes`` more of it is read and discarded first, so that a
  client still sending (an async client, typically) reads the 413 instead of a reset
  connection.
- A body that does not arrive within ``read_timeout`` seconds gets 408 (a slow or stalled
  client, or a ``Transfer-Encoding: chunked`` header over a body that is not chunked, no longer
  holds a request open).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__ = ["BodyLimit"]


class _Timeout(Exception):
    pass


class BodyLimit:
    """Reads each request body whole, within a size and a time bound, then passes it on."""

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        *,
        read_timeout: float = 30.0,
        drain_bytes: int = 2_000_000,
        drain_seconds: float = 2.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds

    @staticmethod
    async def _answer(send: Any, status: int, detail: str) -> None:
        body = json.dumps({"detail": [{"loc": ["body"], "msg": detail, "type": "body"}]})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})

    async def _receive(self, receive: Any, deadline: float) -> Any:
        timeout = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(receive(), max(timeout, 0.0))
        except asyncio.TimeoutError:
            raise _Timeout from None

    async def _drain(self, receive: Any, more: bool) -> None:
        """Read and discard what the client is still sending, within the drain bounds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        drained = 0
        while more and drained < self.drain_bytes:
            try:
                message = await self._receive(receive, deadline)
            except _Timeout:
                return
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on with its body read, or answer 413 or 408 for it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"request body over {self.max_bytes} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            if int(length) <= self.max_bytes + self.drain_bytes:
                await self._drain(receive, more=True)
            await self._answer(send, 413, too_big)
            return
        deadline = asyncio.get_running_loop().time() + self.read_timeout
        received: list[Any] = []
        size = 0
        try:
            while True:
                message = await self._receive(receive, deadline)
                received.append(message)
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                more = message.get("more_body", False)
                if size > self.max_bytes:
                    await self._drain(receive, more)
                    await self._answer(send, 413, too_big)
                    return
                if not more:
                    break
        except _Timeout:
            await self._answer(send, 408, f"request body not received within {self.read_timeout} s")
            return

        async def replay() -> Any:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)
