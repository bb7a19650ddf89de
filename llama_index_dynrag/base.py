"""DynamicRAGRerank: a LlamaIndex node postprocessor that keeps the model-chosen passages."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from dynrag.core.constants import DEFAULT_MODEL
from dynrag.core.interface import Reranker, check_reloadable
from dynrag.core.policy import PolicyOptions, with_top_n
from dynrag.core.types import Passage, Selection, titled_passage

dispatcher = get_dispatcher(__name__)

ADDED_METADATA_KEYS = (
    "retrieval_score",
    "dynrag_rank",
    "dynrag_k",
    "dynrag_status",
    "dynrag_stop_probability",
)
"""Metadata keys added to each returned node (hidden from the LLM and the embedder)."""


class DynamicRAGRerank(PolicyOptions, BaseNodePostprocessor):
    """Reorders the retrieved nodes and keeps only those the dynamic reranker chooses.

    The model reads the query and every node and writes the ids of the nodes needed, best
    first: both the order and the number k come from the model, bounded by ``min_k``/``max_k``.

    The policy options (``min_k``, ``max_k``, ``allow_empty``, ``fallback_k``, ``token_budget``)
    are `dynrag.core.policy.PolicyFields`; those left unset take the reranker's own.

    Each returned node is a new ``NodeWithScore`` over a copy of the node, whose metadata gains
    ``retrieval_score`` (the score the retriever gave), ``dynrag_rank`` (1 = best) and
    ``dynrag_k`` (how many were kept); its ``score`` is the reciprocal rank ``1 / dynrag_rank``.
    The caller's nodes and metadata are never modified.

    Example:
        .. code-block:: python

            from llama_index_dynrag import DynamicRAGRerank

            rerank = DynamicRAGRerank(model="dynrag-minilm-cut", max_k=5)
            engine = index.as_query_engine(similarity_top_k=10, node_postprocessors=[rerank])
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default=DEFAULT_MODEL,
        description="Model folder, bundled name or Hugging Face id the reranker is loaded from.",
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.NONE,
        description="Which metadata get_content() puts into the text the reranker reads.",
    )
    title_key: str = Field(
        default="title", description="Metadata key holding a node's title, shown to the model."
    )
    device: str | None = Field(
        default=None, description="Device when the reranker is built here (default: auto)."
    )
    dtype: str | None = Field(
        default=None, description="dtype when the reranker is built here (default: auto)."
    )

    _reranker: Reranker = PrivateAttr()

    def __init__(
        self, reranker: Reranker | None = None, *, top_n: int | None = None, **kwargs: Any
    ) -> None:
        """Wrap a loaded `Reranker`, or build one from ``model``.

        Options left unset take the reranker's own policy (a trained model's ``max_k``...).

        Args:
            reranker: A reranker to share (loaded once, safe to call from several threads).
            top_n: The cap every LlamaIndex reranker takes: ``max_k`` under its usual name.
            **kwargs: The fields above; any other name is refused.

        Raises:
            ValueError: an unknown option, ``top_n`` and ``max_k`` that differ, or bounds that
                contradict each other (checked here, once).
            TypeError: ``reranker`` is not a `Reranker` (options are keywords).
        """
        if reranker is not None and not isinstance(reranker, Reranker):
            msg = (
                f"DynamicRAGRerank takes a loaded dynrag Reranker or keyword options "
                f"(model=..., max_k=...), not a {type(reranker).__name__}"
            )
            raise TypeError(msg)
        kwargs = with_top_n(kwargs, top_n)
        if reranker is not None and "model" not in kwargs and reranker.name_or_path:
            kwargs["model"] = reranker.name_or_path
        super().__init__(**kwargs)
        if reranker is None:
            reranker = Reranker.from_pretrained(self.model, device=self.device, dtype=self.dtype)
        self.adopt_policy(reranker.policy, kwargs)
        self._reranker = reranker

    # -- copying and pickling: the model is shared by copies, and rebuilt by name on unpickling
    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> DynamicRAGRerank:
        memo = {} if memo is None else memo
        memo[id(self._reranker)] = self._reranker  # read-only and thread-safe: shared
        return cast("DynamicRAGRerank", super().__deepcopy__(memo))

    def __getstate__(self) -> dict[str, Any]:
        check_reloadable(self._reranker, self.model)
        reranker, self._reranker = self._reranker, None  # type: ignore[assignment]
        try:
            return cast("dict[str, Any]", super().__getstate__())
        finally:
            self._reranker = reranker

    def __setstate__(self, state: dict[str, Any]) -> None:
        # the fields through __init__: the model loads by name, and a failure is raised (the
        # LlamaIndex default falls back to an adapter without a model)
        self.__init__(**state["__dict__"])  # type: ignore[misc]

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serializes this component under."""
        return "DynamicRAGRerank"

    @property
    def reranker(self) -> Reranker:
        """The underlying `Reranker`."""
        return self._reranker

    # -- translation -----------------------------------------------------------------------
    def _query(self, query_bundle: QueryBundle | None) -> str:
        if query_bundle is None or not query_bundle.query_str.strip():
            msg = "DynamicRAGRerank needs a query: pass a QueryBundle with a non-empty query_str"
            raise ValueError(msg)
        return query_bundle.query_str

    def _passages(self, nodes: list[NodeWithScore]) -> list[Passage]:
        return [
            titled_passage(
                n.node.get_content(metadata_mode=self.metadata_mode),
                n.node.metadata,
                self.title_key,
            )
            for n in nodes
        ]

    @staticmethod
    def _results(nodes: list[NodeWithScore], selection: Selection) -> list[NodeWithScore]:
        results = []
        for rank, index in enumerate(selection.indices, start=1):
            original = nodes[index]
            metadata = copy.deepcopy(original.node.metadata)
            metadata.update(
                retrieval_score=original.score,
                dynrag_rank=rank,
                dynrag_k=selection.k,
                dynrag_status=selection.status.value,
                dynrag_stop_probability=selection.stop_probability,
            )
            hide = list(ADDED_METADATA_KEYS)
            node = original.node.model_copy(
                update={
                    "metadata": metadata,
                    "excluded_llm_metadata_keys": [
                        *original.node.excluded_llm_metadata_keys,
                        *hide,
                    ],
                    "excluded_embed_metadata_keys": [
                        *original.node.excluded_embed_metadata_keys,
                        *hide,
                    ],
                }
            )
            results.append(NodeWithScore(node=node, score=1.0 / rank))
        return results

    @contextmanager
    def _reranking(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None, query: str
    ) -> Iterator[list[NodeWithScore]]:
        """Events around one reranking: the body fills the yielded list with the results."""
        top_n = self.max_k or len(nodes)
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=top_n, model_name=self.model)
        )
        payload: dict[str, Any] = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model,
            EventPayload.QUERY_STR: query,
            EventPayload.TOP_K: top_n,
        }
        results: list[NodeWithScore] = []
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:
            yield results
            event.on_end(payload={EventPayload.NODES: results})
        dispatcher.event(ReRankEndEvent(nodes=results))

    # -- postprocessing --------------------------------------------------------------------
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = self._query(query_bundle)
        if not nodes:
            return []
        with self._reranking(nodes, query_bundle, query) as results:
            selection = self._reranker.rerank(query, self._passages(nodes), policy=self.policy)
            results.extend(self._results(nodes, selection))
        return results

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = self._query(query_bundle)
        if not nodes:
            return []
        with self._reranking(nodes, query_bundle, query) as results:
            selection = await self._reranker.arerank(
                query, self._passages(nodes), policy=self.policy
            )
            results.extend(self._results(nodes, selection))
        return results
