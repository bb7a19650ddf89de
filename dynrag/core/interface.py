"""`Reranker`: the one interface every model family, and the HTTP client, implements.

The adapters, ``dynrag serve``, ``dynrag eval`` and the CLI depend on this interface only, so a
new model family (`dynrag.core.families`) runs in all of them unchanged.
"""

from __future__ import annotations

import abc
import asyncio
import os
import unicodedata
from collections.abc import Sequence
from typing import Any

from dynrag.core.policy import SelectionPolicy
from dynrag.core.types import Passage, PassageLike, Selection, to_passages

__all__ = ["DynamicReranker", "Reranker", "check_batch", "check_query", "check_reloadable"]


def check_query(query: Any) -> str:
    """``query`` if it is a non-blank string; a clear error otherwise.

    Raises:
        TypeError: not a string.
        ValueError: empty, blank, or only invisible characters (zero-width spaces, controls).
    """
    if not isinstance(query, str):
        msg = f"query must be a string, not {type(query).__name__}"
        raise TypeError(msg)
    if not any(unicodedata.category(ch)[0] not in "CZ" for ch in query):  # blank or invisible
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


def check_reloadable(reranker: Any, model: str) -> None:
    """Whether a component holding ``reranker`` may be pickled as ``model``: it reloads by name.

    Raises:
        pickle.PicklingError: the reranker was built in this process (not loaded from
            ``model``), so unpickling would load another model.
    """
    import pickle

    if reranker is not None and getattr(reranker, "name_or_path", None) != model:
        msg = (
            f"this reranker was not loaded from {model!r}, so a pickled copy could not load it "
            "again; load it with Reranker.from_pretrained (or share the object instead)"
        )
        raise pickle.PicklingError(msg)


class Reranker(abc.ABC):
    """A query and N candidate passages in; the passages needed, best first, out.

    Every implementation returns `Selection` objects whose ``indices`` are unique, in-range
    positions of the input, bounded by a `SelectionPolicy` (the reranker's own ``policy`` unless
    a call passes another). A family implements one method, `_rerank_batch`, which receives
    checked input; `rerank_batch`, `rerank`, `arerank` and `arerank_batch` are built on it.
    """

    policy: SelectionPolicy
    """The default policy of every call (a trained model records its own ``max_k``)."""
    name_or_path: str | None = None
    """What the reranker was loaded from (set by `from_pretrained`)."""
    kind: str
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
        On a family's class (e.g. ``EncoderReranker.from_pretrained``) the model must be of
        that family.

        Raises:
            TypeError: called on a family's class for a model of another family.
        """
        from dynrag.core.families import load_reranker

        reranker = load_reranker(name_or_path, **kwargs)
        if not isinstance(reranker, cls):
            msg = (
                f"{os.fspath(name_or_path)!r} is a {reranker.kind!r} model, not a "
                f"{cls.__name__}; load it with dynrag.Reranker.from_pretrained"
            )
            raise TypeError(msg)
        return reranker

    @abc.abstractmethod
    def _rerank_batch(
        self,
        queries: list[str],
        passages_per_query: list[list[Passage]],
        policy: SelectionPolicy,
    ) -> list[Selection]:
        """The family's work: one `Selection` per query, input already checked.

        Args:
            queries: Non-blank questions.
            passages_per_query: One list of `Passage` per query (possibly empty).
            policy: The policy of this call (the reranker's own unless the caller gave one).
        """

    def _checked(
        self,
        queries: Sequence[str],
        passages_per_query: Sequence[Sequence[PassageLike]],
    ) -> tuple[list[str], list[list[Passage]]]:
        check_batch(queries, passages_per_query)
        return (
            [check_query(q) for q in queries],
            [to_passages(ps) for ps in passages_per_query],
        )

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
        queries, passages = self._checked(queries, passages_per_query)
        return self._rerank_batch(queries, passages, policy or self.policy)

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
        """`rerank` without blocking the event loop."""
        return (await self.arerank_batch([query], [passages], policy=policy))[0]

    async def arerank_batch(
        self,
        queries: Sequence[str],
        passages_per_query: Sequence[Sequence[PassageLike]],
        *,
        policy: SelectionPolicy | None = None,
    ) -> list[Selection]:
        """`rerank_batch` without blocking the event loop."""
        queries, passages = self._checked(queries, passages_per_query)
        return await self._arerank_batch(queries, passages, policy or self.policy)

    async def _arerank_batch(
        self,
        queries: list[str],
        passages_per_query: list[list[Passage]],
        policy: SelectionPolicy,
    ) -> list[Selection]:
        """`_rerank_batch` off the event loop (a worker thread); a family may override it."""
        return await asyncio.to_thread(self._rerank_batch, queries, passages_per_query, policy)


DynamicReranker = Reranker
"""The name the public API and the design use: every reranker here chooses order and k.

``DynamicReranker.from_pretrained(...)`` loads any family; the generative family's class is
`dynrag.core.generative.reranker.GenerativeReranker`.
"""
