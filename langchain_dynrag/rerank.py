"""DynamicRAGRerank: a LangChain document compressor that keeps the model-chosen documents."""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from typing import Any

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager, Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, model_validator

from dynrag.core.constants import DEFAULT_MODEL
from dynrag.core.interface import Reranker, check_reloadable
from dynrag.core.policy import PolicyOptions
from dynrag.core.types import Passage, Selection, titled_passage


class DynamicRAGRerank(PolicyOptions, BaseDocumentCompressor):
    """Reorders retrieved documents and keeps only those the dynamic reranker chooses.

    The model reads the query and every document and writes the ids of the documents needed,
    best first: both the order and the number k come from the model, bounded by
    ``min_k``/``max_k``.

    The policy options (``min_k``, ``max_k``, ``allow_empty``, ``fallback_k``, ``token_budget``)
    are `dynrag.core.policy.PolicyFields`; those left unset take the reranker's own.

    Returned documents are copies (metadata deep-copied) with ``relevance_score`` (the reciprocal
    rank ``1 / dynrag_rank``), ``dynrag_rank`` (1 = best) and ``dynrag_k`` (how many were kept)
    added to their metadata. The input documents are never modified. Each call is reported to
    the callbacks as a chain run named ``DynamicRAGRerank``.

    Example:
        .. code-block:: python

            from langchain_classic.retrievers import ContextualCompressionRetriever
            from langchain_dynrag import DynamicRAGRerank

            retriever = ContextualCompressionRetriever(
                base_compressor=DynamicRAGRerank(max_k=5), base_retriever=base_retriever
            )
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    reranker: Reranker | None = Field(default=None, exclude=True)
    """A loaded reranker to share; built from ``model`` when not given."""
    model: str = DEFAULT_MODEL
    """Model folder, bundled name or Hugging Face id the reranker is loaded from."""
    title_key: str = "title"
    """Metadata key holding a document's title, shown to the model."""
    device: str | None = None
    """Device when the reranker is built here (default: auto)."""
    dtype: str | None = None
    """dtype when the reranker is built here (default: auto)."""

    @model_validator(mode="after")
    def _build_reranker(self) -> DynamicRAGRerank:
        if self.reranker is None:
            self.reranker = Reranker.from_pretrained(
                self.model, device=self.device, dtype=self.dtype
            )
        elif "model" not in self.model_fields_set and self.reranker.name_or_path:
            self.model = self.reranker.name_or_path
        self.adopt_policy(self.reranker.policy, self.model_fields_set)
        return self

    # -- copying and pickling: the model is shared by copies, and rebuilt by name on unpickling
    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> DynamicRAGRerank:
        memo = {} if memo is None else memo
        memo[id(self.reranker)] = self.reranker  # read-only and thread-safe: shared
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        check_reloadable(self.reranker, self.model)
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "reranker": None}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self.__dict__["reranker"] = Reranker.from_pretrained(
            self.model, device=self.device, dtype=self.dtype
        )

    def _passages(self, documents: Sequence[Document]) -> list[Passage]:
        return [titled_passage(d.page_content, d.metadata, self.title_key) for d in documents]

    @staticmethod
    def _results(documents: Sequence[Document], selection: Selection) -> list[Document]:
        results = []
        for rank, index in enumerate(selection.indices, start=1):
            doc = documents[index]
            metadata = {
                **deepcopy(doc.metadata),
                "relevance_score": 1.0 / rank,
                "dynrag_rank": rank,
                "dynrag_k": selection.k,
                "dynrag_status": selection.status.value,
                "dynrag_stop_probability": selection.stop_probability,
            }
            results.append(Document(page_content=doc.page_content, metadata=metadata, id=doc.id))
        return results

    def _run_inputs(self, documents: Sequence[Document], query: str) -> dict[str, Any]:
        return {"query": query, "documents": len(documents), "model": self.model}

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Keep the documents the model chooses for ``query``, in its order.

        Raises:
            ValueError: an empty query.
        """
        if not documents:
            return []
        manager = CallbackManager.configure(inheritable_callbacks=callbacks)
        run = manager.on_chain_start(
            None, self._run_inputs(documents, query), name="DynamicRAGRerank"
        )
        try:
            assert self.reranker is not None
            selection = self.reranker.rerank(query, self._passages(documents), policy=self.policy)
        except BaseException as err:
            run.on_chain_error(err)
            raise
        results = self._results(documents, selection)
        run.on_chain_end({"documents": results, "k": selection.k, "status": selection.status.value})
        return results

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Async `compress_documents`: the model runs without blocking the event loop."""
        if not documents:
            return []
        manager = AsyncCallbackManager.configure(inheritable_callbacks=callbacks)
        run = await manager.on_chain_start(
            None, self._run_inputs(documents, query), name="DynamicRAGRerank"
        )
        try:
            assert self.reranker is not None
            selection = await self.reranker.arerank(
                query, self._passages(documents), policy=self.policy
            )
        except BaseException as err:
            await run.on_chain_error(err)
            raise
        results = self._results(documents, selection)
        await run.on_chain_end(
            {"documents": results, "k": selection.k, "status": selection.status.value}
        )
        return results
