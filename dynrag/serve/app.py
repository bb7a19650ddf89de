"""`dynrag serve`: a rerank HTTP service shaped like the Cohere, Jina and TEI rerank APIs.

``POST /v1/rerank`` takes ``{"query", "documents": [str | {"title", "text"}], "max_k"?,
"min_k"?}`` and answers ``{"model", "k", "status", "results": [{"index", "relevance_score"}]}``
with results in the chosen order (``relevance_score`` is the reciprocal rank). ``GET /health``
answers ``{"status": "ok"}``. Concurrent requests are gathered into batches for the model.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dynrag.core.interface import Reranker
from dynrag.core.policy import SelectionPolicy
from dynrag.core.types import Selection

__all__ = ["RerankRequest", "RerankResponse", "RerankResult", "create_app"]

logger = logging.getLogger(__name__)


class DocumentIn(BaseModel):
    """A document given as an object."""

    model_config = ConfigDict(extra="allow")

    text: str
    title: str | None = None


class RerankRequest(BaseModel):
    """The body of ``POST /v1/rerank``."""

    model_config = ConfigDict(extra="ignore")

    query: str = Field(description="The question the documents should answer.")
    documents: list[str | DocumentIn] = Field(description="Candidates, in retrieval order.")
    max_k: int | None = Field(default=None, ge=0, description="Keep at most this many.")
    min_k: int = Field(default=0, ge=0, description="Keep at least this many.")
    top_n: int | None = Field(
        default=None, ge=0, description="Cohere/Jina name for max_k (used when max_k is absent)."
    )

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            msg = "query is empty"
            raise ValueError(msg)
        return value


class RerankResult(BaseModel):
    """One kept document."""

    index: int = Field(description="0-based position in the request's documents.")
    relevance_score: float = Field(description="Reciprocal rank: 1.0 for the first, 0.5 ...")


class RerankResponse(BaseModel):
    """The body answered by ``POST /v1/rerank``."""

    model: str
    k: int
    status: str
    results: list[RerankResult]


@dataclass
class _Pending:
    request: RerankRequest
    future: asyncio.Future[Selection]


@dataclass
class _Batcher:
    """Gathers concurrent requests and reranks them together, grouped by policy."""

    reranker: Reranker
    max_batch: int
    wait_seconds: float
    queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)

    async def submit(self, request: RerankRequest) -> Selection:
        future: asyncio.Future[Selection] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(request, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            deadline = asyncio.get_running_loop().time() + self.wait_seconds
            while len(batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            groups: dict[SelectionPolicy, list[_Pending]] = {}
            for item in batch:
                groups.setdefault(_policy(item.request, self.reranker.policy), []).append(item)
            for policy, items in groups.items():
                await self._rerank(policy, items)

    async def _rerank(self, policy: SelectionPolicy, items: list[_Pending]) -> None:
        try:
            selections = await self.reranker.arerank_batch(
                [i.request.query for i in items],
                [[_document(d) for d in i.request.documents] for i in items],
                policy=policy,
            )
        except Exception as err:  # give each caller the error; keep serving
            for item in items:
                if not item.future.done():
                    item.future.set_exception(err)
            return
        for item, selection in zip(items, selections, strict=True):
            if not item.future.done():
                item.future.set_result(selection)


def _document(doc: str | DocumentIn) -> Any:
    return doc if isinstance(doc, str) else {"title": doc.title, "text": doc.text}


def _policy(request: RerankRequest, base: SelectionPolicy) -> SelectionPolicy:
    max_k = request.max_k if request.max_k is not None else request.top_n
    return base.model_copy(
        update={"max_k": max_k if max_k is not None else base.max_k, "min_k": request.min_k}
    )


def create_app(
    reranker: Reranker,
    *,
    model_name: str | None = None,
    max_body_bytes: int = 2_000_000,
    max_documents: int = 200,
    max_batch: int = 8,
    batch_wait_ms: float = 5.0,
) -> Any:
    """A FastAPI app serving ``reranker``.

    Args:
        reranker: The loaded reranker (one per process).
        model_name: Reported in responses (default: what the reranker was loaded from).
        max_body_bytes: Larger request bodies get 413.
        max_documents: More documents in one request get 422.
        max_batch: Requests reranked together at most.
        batch_wait_ms: How long the first request of a batch waits for others.
    """
    try:
        from fastapi import FastAPI, HTTPException, Request
        from fastapi.responses import JSONResponse
    except ImportError as err:
        msg = "dynrag serve needs FastAPI and uvicorn: pip install 'dynrag[serve]'"
        raise ImportError(msg) from err

    name = model_name or reranker.name_or_path or "dynrag"
    batcher = _Batcher(reranker, max_batch, batch_wait_ms / 1000)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        task = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(title="dynrag", description=__doc__, lifespan=lifespan)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse(
                {"detail": f"request body over {max_body_bytes} bytes"}, status_code=413
            )
        if length is None and request.method == "POST":
            body = await request.body()
            if len(body) > max_body_bytes:
                return JSONResponse(
                    {"detail": f"request body over {max_body_bytes} bytes"}, status_code=413
                )
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    @app.post("/v1/rerank", response_model=RerankResponse)
    async def rerank(body: RerankRequest) -> RerankResponse:
        if len(body.documents) > max_documents:
            raise HTTPException(422, f"at most {max_documents} documents per request")
        max_k = body.max_k if body.max_k is not None else body.top_n
        if max_k is not None and body.min_k > max_k:
            raise HTTPException(422, f"min_k ({body.min_k}) is larger than max_k ({max_k})")
        selection = await batcher.submit(body)
        return RerankResponse(
            model=name,
            k=selection.k,
            status=selection.status.value,
            results=[
                RerankResult(index=i, relevance_score=1.0 / rank)
                for rank, i in enumerate(selection.indices, start=1)
            ],
        )

    return app
