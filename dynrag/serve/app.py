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
import logging
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dynrag.core.interface import Reranker, check_query
from dynrag.core.policy import POLICY_FIELDS, PolicyFields, SelectionPolicy, with_top_n
from dynrag.serve.batching import Batcher, Overloaded
from dynrag.serve.limits import BodyLimit

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
    ``merged``): e.g. no ``max_k`` keeps the model's trained cap. Types are strict, as in
    feedback logs: ``"max_k": true`` or ``"3"`` is refused.
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    query: str = Field(description="The question the documents should answer.")
    documents: list[str | DocumentIn] = Field(description="Candidates, in retrieval order.")
    top_n: int | None = Field(
        default=None, ge=0, description="Cohere/Jina name for max_k (used when max_k is absent)."
    )

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        check_query(value)  # blank, or only invisible characters: "query is empty"
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
    stop_probability: float | None = Field(
        default=None,
        description="The model's probability that the kept documents suffice (encoder family).",
    )
    results: list[RerankResult]


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
    given = with_top_n(given, request.top_n)
    return base.merged_or_explain(given)


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
    max_queue: int = 64,
    body_timeout: float = 30.0,
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
        max_queue: Requests waiting for the model at most; past it a request gets 503 at once
            (with ``Retry-After``), and ``GET /ready`` answers 503 (saturated).
        body_timeout: Seconds a request body may take to arrive; then 408.
    """
    try:
        from fastapi import FastAPI, HTTPException, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse, Response
    except ImportError as err:
        msg = "dynrag serve needs FastAPI and uvicorn: pip install 'dynrag[serve]'"
        raise ImportError(msg) from err

    name = model_name or reranker.name_or_path or "dynrag"
    batcher = Batcher(reranker, max_batch, batch_wait_ms / 1000, max_queue)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        task = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(title="dynrag", description=__doc__, lifespan=lifespan)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, read_timeout=body_timeout)

    def refuse(
        status: int, loc: list[str | int], message: str, headers: dict[str, str] | None = None
    ) -> Any:
        """An error in the one shape of every 4xx/5xx here: ``{"detail": [{loc, msg, type}]}``."""
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        msg = f"{where}: {message}" if where else message
        kind = "overloaded" if status == 503 else "value_error"
        detail = [{"loc": ["body", *loc], "msg": msg, "type": kind}]
        return HTTPException(status, detail, headers=headers)

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
    async def health() -> dict[str, Any]:
        """Liveness, with the queue: ``waiting`` requests of at most ``max_queue``."""
        return {"status": "ok", "model": name, "waiting": batcher.waiting, "max_queue": max_queue}

    @app.get("/ready")
    async def ready() -> Any:
        """Readiness: 200 while a request would be taken, 503 while the queue is full."""
        body = {"waiting": batcher.waiting, "max_queue": max_queue, "dropped": batcher.dropped}
        if batcher.saturated:
            return JSONResponse({"status": "saturated", **body}, status_code=503)
        return {"status": "ready", **body}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        """The served model: its name, family and own policy (what options left out take)."""
        return {"model": name, "kind": reranker.kind, "policy": reranker.policy.model_dump()}

    async def rerank(body: RerankRequest, request: Request) -> Any:
        if len(body.documents) > max_documents:
            raise refuse(422, ["documents"], f"at most {max_documents} per request")
        if len(body.query) > max_query_chars:
            raise refuse(422, ["query"], f"longer than {max_query_chars} characters")
        for i, doc in enumerate(body.documents):
            if isinstance(doc, DocumentIn) and len(doc.title or "") > max_title_chars:
                where: list[str | int] = ["documents", i, "title"]
                raise refuse(422, where, f"longer than {max_title_chars} characters")
        try:
            policy = _policy(body, reranker.policy)
        except ValueError as err:
            raise refuse(422, [], str(err)) from None
        documents = [_document(d) for d in body.documents]
        work = asyncio.ensure_future(batcher.submit(body.query, documents, policy))
        gone = False
        try:
            while not work.done():  # a client that goes away takes its request with it
                await asyncio.wait({work}, timeout=0.1)
                if not work.done() and await request.is_disconnected():
                    gone = True
                    work.cancel()
            if gone and work.cancelled():  # nobody to answer: 499, not an error with traceback
                return Response(status_code=499)
            selection = await work
        except Overloaded:
            retry = {"Retry-After": "1"}
            raise refuse(503, [], f"overloaded: {max_queue} requests waiting", retry) from None
        except asyncio.CancelledError:
            work.cancel()
            raise
        except (TypeError, ValueError) as err:  # the reranker refused this request's input
            raise refuse(422, [], str(err)) from None
        return RerankResponse(
            model=name,
            k=selection.k,
            status=selection.status.value,
            stop_probability=selection.stop_probability,
            results=[
                RerankResult(index=i, relevance_score=1.0 / rank)
                for rank, i in enumerate(selection.indices, start=1)
            ],
        )

    # Request is imported here (the serve extra), so name it for FastAPI's injection
    rerank.__annotations__["request"] = Request
    app.post("/v1/rerank", response_model=RerankResponse)(rerank)
    return app
