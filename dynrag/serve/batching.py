"""Concurrent requests gathered into batches for the model, with a bounded queue.

Past ``max_queue`` requests waiting, a new one is refused at once (`Overloaded`: the server
answers 503 with ``Retry-After``) instead of letting every request's latency grow. A request
whose client has gone (its future cancelled) is dropped before the model sees it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dynrag.core.interface import Reranker
from dynrag.core.policy import SelectionPolicy
from dynrag.core.types import Selection

__all__ = ["Batcher", "Overloaded"]

logger = logging.getLogger(__name__)


class Overloaded(Exception):
    """The queue is full: the request is refused at once."""


@dataclass
class _Pending:
    query: str
    documents: list[Any]
    policy: SelectionPolicy
    future: asyncio.Future[Selection]


@dataclass
class Batcher:
    """Gathers concurrent requests and reranks them together, grouped by policy."""

    reranker: Reranker
    max_batch: int
    wait_seconds: float
    max_queue: int
    queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)
    dropped: int = 0
    """Requests whose client went away before the model reached them."""
    live: int = 0
    """Requests submitted and not yet answered (a cancelled one stops counting at once)."""

    @property
    def waiting(self) -> int:
        """Requests not yet answered whose clients still wait (the model's included)."""
        return self.live

    @property
    def saturated(self) -> bool:
        """Whether a new request would be refused."""
        return self.waiting >= self.max_queue

    async def submit(
        self, query: str, documents: Sequence[Any], policy: SelectionPolicy
    ) -> Selection:
        """The selection for one request (cancelling the caller drops it from the queue).

        Raises:
            Overloaded: ``max_queue`` requests are already waiting.
        """
        if self.saturated:
            raise Overloaded
        future: asyncio.Future[Selection] = asyncio.get_running_loop().create_future()
        pending = _Pending(query, list(documents), policy, future)
        self.live += 1

        def answered(done: asyncio.Future[Selection]) -> None:
            self.live -= 1
            if done.cancelled():  # its documents need not wait in the queue for the batcher
                pending.documents = []

        future.add_done_callback(answered)
        self.queue.put_nowait(pending)
        return await future

    async def _next(self) -> _Pending | None:
        """The next request whose client still waits (abandoned ones are dropped)."""
        item = await self.queue.get()
        if item.future.done():  # cancelled: the client disconnected
            self.dropped += 1
            return None
        return item

    async def run(self) -> None:
        """Serve the queue until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next()
            if first is None:
                continue
            batch = [first]
            deadline = loop.time() + self.wait_seconds
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._next(), timeout)
                except asyncio.TimeoutError:
                    break
                if item is not None:
                    batch.append(item)
            groups: dict[SelectionPolicy, list[_Pending]] = {}
            for item in batch:
                groups.setdefault(item.policy, []).append(item)
            for policy, items in groups.items():
                try:
                    await self._rerank(policy, [i for i in items if not i.future.done()])
                except Exception as err:  # never end the loop: fail this batch, serve the next
                    logger.exception("a batch failed unexpectedly")
                    for item in items:
                        if not item.future.done():
                            item.future.set_exception(err)

    async def _rerank(self, policy: SelectionPolicy, items: list[_Pending]) -> None:
        if not items:
            return
        try:
            selections = await self.reranker.arerank_batch(
                [i.query for i in items], [i.documents for i in items], policy=policy
            )
        except Exception as err:
            if len(items) > 1:  # one bad request must not fail the others: each alone
                logger.info("a batch of %d failed (%s); reranking each alone", len(items), err)
                for item in items:
                    await self._rerank(policy, [item])
                return
            if not items[0].future.done():
                items[0].future.set_exception(err)
            return
        for item, selection in zip(items, selections, strict=True):
            if not item.future.done():
                item.future.set_result(selection)
