"""`RemoteReranker`: a `Reranker` whose model runs behind ``dynrag serve``.

It holds an HTTP client (composition): nothing of a model family is loaded here, and
`dynrag.core` never imports this module (``Reranker.from_pretrained(url)`` finds it by name).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from dynrag.core.interface import Reranker, check_batch, check_query
from dynrag.core.policy import SelectionPolicy
from dynrag.core.types import PassageLike, Selection, SelectionStatus, to_passages

__all__ = ["RemoteReranker"]


class RemoteReranker(Reranker):
    """Calls a ``dynrag serve`` endpoint; usable wherever a `Reranker` is (both adapters).

    Example:
        >>> rr = Reranker.from_pretrained("http://127.0.0.1:8000")  # doctest: +SKIP
    """

    kind = "remote"

    def __init__(
        self,
        url: str,
        *,
        policy: SelectionPolicy | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        max_concurrency: int = 8,
    ) -> None:
        """Point at a server.

        Args:
            url: The server's base URL, e.g. ``http://127.0.0.1:8000``.
            policy: ``min_k``/``max_k`` sent with each request (other fields are the server's).
            timeout: Seconds per request.
            retries: Connection retries (httpx transport retries).
            max_concurrency: Requests in flight at once from `arerank_batch`.
        """
        import httpx

        self.url = url.rstrip("/")
        self.policy = policy or SelectionPolicy()
        self.name_or_path = self.url
        self.max_concurrency = max_concurrency
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, transport=httpx.HTTPTransport(retries=retries))
        self._retries = retries

    def _body(
        self, query: str, passages: Sequence[PassageLike], policy: SelectionPolicy
    ) -> dict[str, Any]:
        check_query(query)
        docs = [
            {"text": p.text, "title": p.title} if p.title else p.text for p in to_passages(passages)
        ]
        return {"query": query, "documents": docs, "max_k": policy.max_k, "min_k": policy.min_k}

    def _selection(
        self, passages: Sequence[PassageLike], data: dict[str, Any], seconds: float
    ) -> Selection:
        items = to_passages(passages)
        indices = [int(r["index"]) for r in data["results"]]
        return Selection(
            indices=indices,
            passages=[items[i] for i in indices],
            raw_output="",
            status=SelectionStatus(data["status"]),
            num_candidates=len(items),
            rerank_seconds=seconds,
            model_calls=1,
        )

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(f"{self.url}/v1/rerank", json=body)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def rerank_batch(
        self,
        queries: Sequence[str],
        passages_per_query: Sequence[Sequence[PassageLike]],
        *,
        policy: SelectionPolicy | None = None,
    ) -> list[Selection]:
        """One request per query (the server batches concurrent requests)."""
        check_batch(queries, passages_per_query)
        out = []
        for query, passages in zip(queries, passages_per_query, strict=True):
            if not passages:
                out.append(self._selection(passages, {"results": [], "status": "none"}, 0.0))
                continue
            start = time.perf_counter()
            data = self._post(self._body(query, passages, policy or self.policy))
            out.append(self._selection(passages, data, time.perf_counter() - start))
        return out

    async def arerank(
        self,
        query: str,
        passages: Sequence[PassageLike],
        *,
        policy: SelectionPolicy | None = None,
    ) -> Selection:
        """`rerank` over an async HTTP client."""
        return (await self.arerank_batch([query], [passages], policy=policy))[0]

    async def arerank_batch(
        self,
        queries: Sequence[str],
        passages_per_query: Sequence[Sequence[PassageLike]],
        *,
        policy: SelectionPolicy | None = None,
    ) -> list[Selection]:
        """Concurrent requests, at most ``max_concurrency`` in flight."""
        import httpx

        check_batch(queries, passages_per_query)
        limit = asyncio.Semaphore(self.max_concurrency)
        transport = httpx.AsyncHTTPTransport(retries=self._retries)

        async with httpx.AsyncClient(timeout=self._timeout, transport=transport) as client:

            async def one(query: str, passages: Sequence[PassageLike]) -> Selection:
                if not passages:
                    return self._selection(passages, {"results": [], "status": "none"}, 0.0)
                body = self._body(query, passages, policy or self.policy)
                async with limit:
                    start = time.perf_counter()
                    response = await client.post(f"{self.url}/v1/rerank", json=body)
                    response.raise_for_status()
                    return self._selection(passages, response.json(), time.perf_counter() - start)

            return list(
                await asyncio.gather(
                    *(one(q, p) for q, p in zip(queries, passages_per_query, strict=True))
                )
            )
