"""First-stage ordering of candidates before the model reads them.

DynamicRAG's reranker reads its candidates in retrieval order, best first. Candidates that
arrive in an arbitrary order (a distractor set, a union of retrievers, a shuffled list) can be
put in that order by a cheap lexical first stage: BM25 of the query against the candidates
themselves (`bm25s`). A model trained on presorted candidates records it in its
``dynrag_config.json`` (``presort: "bm25"``) and `DynamicReranker` applies it at inference, so
training and inference see the same order. Selections still index the caller's list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal, get_args

from dynrag.core.types import Passage

__all__ = [
    "PRESORT_METHODS",
    "PresortMethod",
    "bm25_scores",
    "check_presort",
    "passage_text",
    "presort_order",
]

PresortMethod = Literal["bm25"]
PRESORT_METHODS: tuple[str, ...] = get_args(PresortMethod)


def passage_text(passage: Passage) -> str:
    """The text a first-stage scorer reads: ``"title. text"`` (or the text alone)."""
    return f"{passage.title}. {passage.text}" if passage.title else passage.text


def bm25_scores(query: str, texts: Sequence[str]) -> list[float]:
    """BM25 score of ``query`` against each text, the texts themselves being the corpus.

    Scores do not depend on the texts' order. An empty list gives an empty list; a query that
    shares no indexable word with the texts (stopwords and one-letter words are not indexed)
    scores every text 0.
    """
    import bm25s

    _quiet_bm25s()
    if not texts:
        return []
    corpus = bm25s.tokenize(list(texts), return_ids=False, show_progress=False)
    vocab = {token for doc in corpus for token in doc}
    query_tokens = bm25s.tokenize([query], return_ids=False, show_progress=False)[0]
    words = [w for w in query_tokens if w in vocab]
    if not words:  # nothing in common (or nothing indexable): no evidence either way
        return [0.0] * len(texts)
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    return [float(s) for s in retriever.get_scores(words)]


def _quiet_bm25s() -> None:
    """Undo bm25s's own DEBUG level on its logger, unless someone chose a level for it.

    bm25s sets it at import, which floods an application's INFO log with a line per index.
    """
    log = logging.getLogger("bm25s")
    if log.level == logging.DEBUG and not log.handlers:
        log.setLevel(logging.NOTSET)


def presort_order(method: str | None, query: str, passages: Sequence[Passage]) -> list[int]:
    """Positions of ``passages``, best first by ``method`` (ties keep input order).

    ``None`` keeps the input order. Sorting an already presorted list gives it back unchanged.

    Raises:
        ValueError: an unknown method.
    """
    n = len(passages)
    if check_presort(method) is None:
        return list(range(n))
    scores = bm25_scores(query, [passage_text(p) for p in passages])
    return sorted(range(n), key=lambda i: (-scores[i], i))


def check_presort(method: Any) -> str | None:
    """``method`` if it names a known presort (or is None); a clear error otherwise."""
    if method is None or method in PRESORT_METHODS:
        return method
    msg = f"unknown presort {method!r}; use one of {PRESORT_METHODS} or None"
    raise ValueError(msg)
