"""`Reranker`: the one interface every model family, and the HTTP client, implements.

The adapters, ``dynrag serve``, ``dynrag eval`` and the CLI depend on this interface only, so a
new model family (`dynrag.core.families`) runs in all of them unchanged.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Sequence
from typing import Any

from dynrag.core.policy import SelectionPolicy
from dynrag.core.types import PassageLike, Selection

__all__ = ["Reranker", "check_batch", "check_query"]


def check_query(query: Any) -> str:
    """``query`` if it is a non-blank string; a clear error otherwise.

    Raises:
        TypeError: not a string.
        ValueError: empty or blank.
    """
    if not isinstance(query, str):
        msg = f"query must be a string, not {type(query).__name__}"
        raise TypeError(msg)
    if not query.strip():
        msg = "query is empty; give the question the passages should answer"
        raise ValueError(msg)
    return query


def check_batch(queries: Any, passages_per_query: Any) -> None:
    """The checks every `Reranker.rerank_batch` makes on its arguments.

    Raises:
        TypeError: ``queries`` is a single string.
        ValueError: not one passage list per query.
    """
    if isinstance(queries, str):
        msg = "queries must be a list of strings; use rerank() for one query"
        raise TypeError(msg)
    if len(queries) != len(passages_per_query):
        msg = (
            f"{len(queries)} queries but {len(passages_per_query)} passage lists; "
            "give one list of passages per query"
        )
        raise ValueError(msg)


class Reranker(abc.ABC):
    """A query and N candidate passages in; the passages needed, best first, out.

    Every implementation returns `Selection` objects whose ``indices`` are unique, in-range
    positions of the input, bounded by a `SelectionPolicy` (the reranker's own ``policy`` unless
    a call passes another). Subclasses implement `rerank_batch`; the other three methods have
    defaults built on it.
    """

    policy: SelectionPolicy
    """The default policy of every call (a trained model records its own ``max_k``)."""
    name_or_path: str | None = None
    """What the reranker was loaded from (set by `from_pretrained`)."""
    kind: str = "generative"
    """The model family (``dynrag_config.json``'s ``kind``)."""

    @property
    def name(self) -> str:
        """A short name for logs, events and reports."""
        return self.name_or_path or type(self).__name__

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str], **kwargs: Any) -> Reranker:
        """Load a reranker of any family: a folder, a bundled name, a hub id or a server URL.

        The family is the ``kind`` recorded in the model's ``dynrag_config.json`` (none recorded:
        ``generative``); see `dynrag.core.families.load_reranker` for the keyword arguments.

        Raises:
            TypeError: called on a family's class for a model of another family.
        """
        from dynrag.core.families import load_reranker

        reranker = load_reranker(name_or_path, **kwargs)
        if cls is not Reranker and not cls._accepts(reranker):
            msg = (
                f"{os.fspath(name_or_path)!r} is a {reranker.kind!r} model, not a "
                f"{cls.__name__}; load it with dynrag.Reranker.from_pretrained"
            )
            raise TypeError(msg)
        return reranker

    @classmethod
    def _accepts(cls, reranker: Reranker) -> bool:
        """Whether ``cls.from_pretrained`` may return ``reranker`` (default: an instance)."""
        return isinstance(reranker, cls)

    @abc.abstractmethod
    def rerank_batch(
        self,
        queries: Sequence[str],
        passages_per_query: Sequence[Sequence[PassageLike]],
        *,
        policy: SelectionPolicy | None = None,
    ) -> list[Selection]:
        """`rerank` for many queries; the same results as one by one.

        Raises:
            ValueError: not one passage list per query, or an empty query.
            TypeError: ``queries`` is one string, or a passage of another type.
        """

    def rerank(
        self,
        query: str,
        passages: Sequence[PassageLike],
        *,
        policy: SelectionPolicy | None = None,
    ) -> Selection:
        """Select the passages ``query`` needs, most useful first.

        Args:
            query: The question.
            passages: Candidates as `str`, `Passage`, or mappings with ``title``/``text``.
            policy: Override the reranker's policy for this call.

        Raises:
            ValueError: an empty or blank query.
            TypeError: a passage of another type (its position is named).
        """
        return self.rerank_batch([query], [passages], policy=policy)[0]

    async def arerank(
        self,
        query: str,
        passages: Sequence[PassageLike],
        *,
        policy: SelectionPolicy | None = None,
    ) -> Selection:
        """`rerank` without blocking the event loop (the model runs in a worker thread)."""
        return await asyncio.to_thread(self.rerank, query, passages, policy=policy)

    async def arerank_batch(
        self,
        queries: Sequence[str],
        passages_per_query: Sequence[Sequence[PassageLike]],
        *,
        policy: SelectionPolicy | None = None,
    ) -> list[Selection]:
        """`rerank_batch` without blocking the event loop."""
        return await asyncio.to_thread(
            self.rerank_batch, queries, passages_per_query, policy=policy
        )
