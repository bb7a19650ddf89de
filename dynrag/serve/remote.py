"""`RemoteReranker`: a `Reranker` whose model runs behind ``dynrag serve``.

It holds an HTTP client (composition): nothing of a model family is loaded here. It is the
``url`` family (an entry point of the ``dynrag.families`` group in pyproject.toml), which
``Reranker.from_pretrained(url)`` loads; `dynrag.core` never names this module.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dynrag.core.interface import Reranker
from dynrag.core.policy import SelectionPolicy, refuse_unknown
from dynrag.core.types import Passage, Selection, SelectionStatus

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
        **policy_fields: Any,
    ) -> None:
        """Point at a server.

        Args:
            url: The server's base URL, e.g. ``http://127.0.0.1:8000``.
            policy: The default policy; or give policy fields (``min_k``, ``max_k``...), which
                override the served model's own policy (read from the server on first use,
                ``GET /v1/model``). Each request sends all five options.
            timeout: Seconds per request.
            retries: Connection retries (httpx transport retries).
            max_concurrency: Requests in flight at once from `arerank_batch`.
            **policy_fields: `SelectionPolicy` fields; anything else is refused.

        Raises:
            TypeError: an option this family does not take (named).
            ValueError: both ``policy`` and policy fields.
        """
        import httpx

        refuse_unknown("url", policy_fields, "policy, timeout, retries, max_concurrency")
        if policy is not None and policy_fields:
            msg = "pass either policy= or policy fields such as max_k=, not both"
            raise ValueError(msg)
        self.url = url.rstrip("/")
        self._policy = policy
        self._policy_fields = policy_fields
        self.name_or_path = self.url
        self.max_concurrency = max_concurrency
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, transport=httpx.HTTPTransport(retries=retries))
        self._retries = retries

    @property
    def policy(self) -> SelectionPolicy:
        """The served model's own policy with this client's options over it (read once)."""
        if self._policy is None:
            response = self._client.get(f"{self.url}/v1/model")
            response.raise_for_status()
            served = SelectionPolicy.model_validate(response.json()["policy"])
            self._policy = served.merged(**self._policy_fields)
        return self._policy

    @policy.setter
    def policy(self, value: SelectionPolicy) -> None:
        self._policy = value

    @staticmethod
    def _body(query: str, passages: list[Passage], policy: SelectionPolicy) -> dict[str, Any]:
        """The request: every policy option of the call (a null one is the server's own)."""
        docs = [{"text": p.text, "title": p.title} if p.title else p.text for p in passages]
        return {"query": query, "documents": docs, **policy.model_dump()}

    @staticmethod
    def _selection(items: list[Passage], data: dict[str, Any], seconds: float) -> Selection:
        indices = [int(r["index"]) for r in data["results"]]
        return Selection(
            indices=indices,
            passages=[items[i] for i in indices],
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

    def _rerank_batch(
        self,
        queries: list[str],
        passages_per_query: list[list[Passage]],
        policy: SelectionPolicy,
    ) -> list[Selection]:
        """One request per query (the server batches concurrent requests)."""
        out = []
        for query, passages in zip(queries, passages_per_query, strict=True):
            if not passages:
                out.append(self._selection(passages, {"results": [], "status": "none"}, 0.0))
                continue
            start = time.perf_counter()
            data = self._post(self._body(query, passages, policy))
            out.append(self._selection(passages, data, time.perf_counter() - start))
        return out

    async def _arerank_batch(
        self,
        queries: list[str],
        passages_per_query: list[list[Passage]],
        policy: SelectionPolicy,
    ) -> list[Selection]:
        """Concurrent requests over an async HTTP client, at most ``max_concurrency`` in flight."""
        import httpx

        limit = asyncio.Semaphore(self.max_concurrency)
        transport = httpx.AsyncHTTPTransport(retries=self._retries)

        async with httpx.AsyncClient(timeout=self._timeout, transport=transport) as client:

            async def one(query: str, passages: list[Passage]) -> Selection:
                if not passages:
                    return self._selection(passages, {"results": [], "status": "none"}, 0.0)
                body = self._body(query, passages, policy)
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
