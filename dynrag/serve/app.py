"""`dynrag serve`: a rerank HTTP service shaped like the Cohere, Jina and TEI rerank APIs.

``POST /v1/rerank`` takes ``{"query", "documents": [str | {"title", "text"}]}`` and any of the
policy's options (``min_k``, ``max_k`` or ``top_n``, ``allow_empty``, ``fallback_k``,
``token_budget``; left out: the model's own) and answers ``{"model", "k", "status",
"results": [{"index", "relevance_score"}]}`` with results in the chosen order
(``relevance_score`` is the reciprocal rank). ``GET /health`` answers ``{"status": "ok"}``,
``GET /v1/model`` the model's name, family and own policy. Concurrent requests are gathered
into batches for the model; each request succeeds or fails on its own (a bad request never fails
its batch-mates).

Bad input is refused before the model runs: a body over ``max_body_bytes`` (chunked or not) gets
413 as soon as the limit is passed; invalid JSON, invalid text (a lone surrogate), a query or
title over its cap, too many documents, or bounds that contradict each other or the model's own
(``min_k`` above the model's ``max_k``) get 422 naming the field.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dynrag.core.interface import Reranker
from dynrag.core.policy import POLICY_FIELDS, PolicyFields, SelectionPolicy
from dynrag.core.types import Selection

__all__ = ["RerankRequest", "RerankResponse", "RerankResult", "create_app"]

logger = logging.getLogger(__name__)


def _valid_text(value: str, where: str) -> str:
    """``value`` if it is valid Unicode text (encodable as UTF-8, as every tokenizer needs)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        msg = f"{where} holds invalid text at character {err.start} (a lone surrogate?)"
        raise ValueError(msg) from None
    return value


class DocumentIn(BaseModel):
    """A document given as an object."""

    model_config = ConfigDict(extra="allow")

    text: str
    title: str | None = None

    @field_validator("text", "title")
    @classmethod
    def _text_is_valid(cls, value: str | None) -> str | None:
        return value if value is None else _valid_text(value, "the document")


class RerankRequest(PolicyFields):
    """The body of ``POST /v1/rerank``: the query, the documents and the policy's options.

    A policy option left out, or sent as null, is the served model's own (`SelectionPolicy`
    ``merged``): e.g. no ``max_k`` keeps the model's trained cap.
    """

    model_config = ConfigDict(extra="ignore")

    query: str = Field(description="The question the documents should answer.")
    documents: list[str | DocumentIn] = Field(description="Candidates, in retrieval order.")
    top_n: int | None = Field(
        default=None, ge=0, description="Cohere/Jina name for max_k (used when max_k is absent)."
    )

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            msg = "query is empty"
            raise ValueError(msg)
        return _valid_text(value, "query")

    @field_validator("documents")
    @classmethod
    def _documents_are_valid(cls, value: list[str | DocumentIn]) -> list[str | DocumentIn]:
        for i, doc in enumerate(value):
            if isinstance(doc, str):
                _valid_text(doc, f"documents[{i}]")
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
    policy: SelectionPolicy
    future: asyncio.Future[Selection]


@dataclass
class _Batcher:
    """Gathers concurrent requests and reranks them together, grouped by policy."""

    reranker: Reranker
    max_batch: int
    wait_seconds: float
    queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)

    async def submit(self, request: RerankRequest, policy: SelectionPolicy) -> Selection:
        future: asyncio.Future[Selection] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(request, policy, future))
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
                groups.setdefault(item.policy, []).append(item)
            for policy, items in groups.items():
                await self._rerank(policy, items)

    async def _rerank(self, policy: SelectionPolicy, items: list[_Pending]) -> None:
        try:
            selections = await self.reranker.arerank_batch(
                [i.request.query for i in items],
                [[_document(d) for d in i.request.documents] for i in items],
                policy=policy,
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


def _document(doc: str | DocumentIn) -> Any:
    return doc if isinstance(doc, str) else {"title": doc.title, "text": doc.text}


def _policy(request: RerankRequest, base: SelectionPolicy) -> SelectionPolicy:
    """The reranker's policy with the request's bounds, validated as a whole.

    Raises:
        ValueError: the bounds contradict each other or the model's ``max_k``.
    """
    given = {
        name: getattr(request, name)
        for name in request.model_fields_set & set(POLICY_FIELDS)
        if getattr(request, name) is not None
    }
    if request.top_n is not None:
        if given.get("max_k", request.top_n) != request.top_n:
            msg = f"top_n ({request.top_n}) and max_k ({given['max_k']}) differ; send one of them"
            raise ValueError(msg)
        given["max_k"] = request.top_n
    return base.merged_or_explain(given)


class _BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` gets 413 before more of it is read.

    A declared ``content-length`` over the limit is refused at once (the server reads no more
    than the declared length); a chunked body is read up to the limit and refused as soon as it
    passes it, so an oversize upload never sits in memory.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        received: list[Any] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Any:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)


def create_app(
    reranker: Reranker,
    *,
    model_name: str | None = None,
    max_body_bytes: int = 2_000_000,
    max_documents: int = 200,
    max_query_chars: int = 4_000,
    max_title_chars: int = 1_000,
    max_batch: int = 8,
    batch_wait_ms: float = 5.0,
) -> Any:
    """A FastAPI app serving ``reranker``.

    Args:
        reranker: The loaded reranker (one per process).
        model_name: Reported in responses (default: what the reranker was loaded from).
        max_body_bytes: Larger request bodies get 413.
        max_documents: More documents in one request get 422.
        max_query_chars: A longer query gets 422 (the reranker also cuts the query to its
            ``max_query_tokens``).
        max_title_chars: A longer document title gets 422.
        max_batch: Requests reranked together at most.
        batch_wait_ms: How long the first request of a batch waits for others.
    """
    try:
        from fastapi import FastAPI, HTTPException, Request
        from fastapi.exceptions import RequestValidationError
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

    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        # The field and the reason only: echoing the input could not even be encoded when it
        # holds invalid text, and would send an oversize input back.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        """The served model: its name, family and own policy (what options left out take)."""
        return {"model": name, "kind": reranker.kind, "policy": reranker.policy.model_dump()}

    @app.post("/v1/rerank", response_model=RerankResponse)
    async def rerank(body: RerankRequest) -> RerankResponse:
        if len(body.documents) > max_documents:
            raise HTTPException(422, f"at most {max_documents} documents per request")
        if len(body.query) > max_query_chars:
            raise HTTPException(422, f"query: longer than {max_query_chars} characters")
        for i, doc in enumerate(body.documents):
            if isinstance(doc, DocumentIn) and len(doc.title or "") > max_title_chars:
                raise HTTPException(
                    422, f"documents[{i}].title: longer than {max_title_chars} characters"
                )
        try:
            policy = _policy(body, reranker.policy)
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        try:
            selection = await batcher.submit(body, policy)
        except (TypeError, ValueError) as err:  # the reranker refused this request's input
            raise HTTPException(422, str(err)) from None
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
