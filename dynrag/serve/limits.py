"""ASGI middleware that bounds what one request may cost before the app sees it.

- A body over ``max_bytes`` gets 413 as soon as the limit is passed (a declared length at once),
  never held in memory; up to ``drain_bytes`` more of it is read and discarded first, so that a
  client still sending (an async client, typically) reads the 413 instead of a reset
  connection.
- A body that does not arrive within ``read_timeout`` seconds gets 408 (a slow or stalled
  client, or a ``Transfer-Encoding: chunked`` header over a body that is not chunked, no longer
  holds a request open).

Headers that do not arrive in time are the server's to bound: `header_timeout_protocol`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__ = ["BodyLimit", "header_timeout_protocol"]


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


def header_timeout_protocol() -> type:
    """Uvicorn's h11 protocol that closes a connection whose first request's headers are late.

    uvicorn times out an idle connection only after a first response (and any byte received
    disarms that timer), so a client that connects and sends its request line and headers
    slowly, or never, holds the connection open. Here a timer started with the connection
    closes it unless a whole request head has arrived within ``timeout_keep_alive`` seconds.
    Pass it as ``uvicorn.run(..., http=header_timeout_protocol())``.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._head_timer: Any = self.loop.call_later(self.timeout_keep_alive, self._head_late)

        def handle_events(self) -> None:
            super().handle_events()
            if self.scope is not None and self._head_timer is not None:  # a request head came
                self._head_timer.cancel()
                self._head_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _head_late(self) -> None:
            self._head_timer = None
            if self.scope is None and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutH11Protocol
