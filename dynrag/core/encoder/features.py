"""Listwise features of one query's candidates, read jointly by the cut head.

Per candidate: the cross-encoder's logit (raw, against the best, standardised, its rank, as a
probability, and how many candidates it finds relevant in all), the first stage's evidence
(BM25 and MiniLM cosine, standardised, and their ranks), and how it relates to the best
candidates: its embedding similarity to them, whether its title is named in their text, or
theirs in its text. Multi-hop questions need the last group: the second passage is
often unlike the question but named by, or close to, the first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch

from dynrag.core.types import Passage

__all__ = ["FEATURE_NAMES", "NUM_FEATURES", "candidate_features"]

FEATURE_NAMES = (
    "logit",
    "logit_minus_best",
    "logit_z",
    "logit_rank",
    "bm25_z",
    "bm25_rank",
    "cosine",
    "cosine_z",
    "cosine_rank",
    "sim_to_best",
    "max_sim_to_top3",
    "title_named_by_top2",
    "names_top2_title",
    "title_in_query",
    "log_candidates",
    "is_best",
    "probability",
    "expected_relevant",
    "above_half",
    "rank_minus_expected",
)
NUM_FEATURES = len(FEATURE_NAMES)

_WORD = re.compile(r"\w+")
_TOP = 3


def _z(values: torch.Tensor) -> torch.Tensor:
    if values.numel() < 2:
        return torch.zeros_like(values)
    std = values.std(unbiased=False)
    return (values - values.mean()) / std if std > 1e-9 else torch.zeros_like(values)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """0 for the highest value, 1 for the next... (ties by position)."""
    order = sorted(range(values.numel()), key=lambda i: (-float(values[i]), i))
    ranks = torch.zeros(values.numel())
    for rank, i in enumerate(order):
        ranks[i] = rank
    return ranks


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _named(title: str | None, text: str) -> bool:
    """Whether ``title`` (at least 4 characters once normalised) appears in ``text``."""
    if not title:
        return False
    needle = _norm(title)
    return len(needle) >= 4 and f" {needle} " in f" {text} "


def candidate_features(
    query: str,
    passages: Sequence[Passage],
    logits: torch.Tensor,
    bm25: Sequence[float],
    query_embedding: torch.Tensor,
    passage_embeddings: torch.Tensor,
) -> torch.Tensor:
    """``[n, NUM_FEATURES]`` features of each candidate, in the order given.

    Args:
        query: The question.
        passages: The candidates.
        logits: ``[n]`` cross-encoder logits.
        bm25: BM25 score of the query against each candidate (the candidates as corpus).
        query_embedding: ``[d]`` normalised bi-encoder embedding of the query.
        passage_embeddings: ``[n, d]`` normalised embeddings of the candidates.
    """
    n = len(passages)
    if n == 0:
        return torch.zeros(0, NUM_FEATURES)
    logits = logits.float()
    bm = torch.tensor([float(b) for b in bm25])
    cosine = passage_embeddings @ query_embedding
    sims = passage_embeddings @ passage_embeddings.T
    rank = _ranks(logits)
    top = [int(i) for i in sorted(range(n), key=lambda i: int(rank[i]))[:_TOP]]
    best = top[0]
    texts = [_norm(p.text) for p in passages]
    query_words = set(_WORD.findall(query.lower()))
    out = torch.zeros(n, NUM_FEATURES)
    out[:, 0] = logits
    out[:, 1] = logits - logits.max()
    out[:, 2] = _z(logits)
    out[:, 3] = rank / 10.0
    out[:, 4] = _z(bm)
    out[:, 5] = _ranks(bm) / 10.0
    out[:, 6] = cosine
    out[:, 7] = _z(cosine)
    out[:, 8] = _ranks(cosine) / 10.0
    for i, p in enumerate(passages):
        others = [j for j in top if j != i]
        out[i, 9] = 0.0 if i == best else float(sims[i, best])
        out[i, 10] = max((float(sims[i, j]) for j in others), default=0.0)
        out[i, 11] = float(any(_named(p.title, texts[j]) for j in others[:2]))
        out[i, 12] = float(any(_named(passages[j].title, texts[i]) for j in others[:2]))
        title_words = set(_WORD.findall((p.title or "").lower()))
        out[i, 13] = len(title_words & query_words) / len(title_words) if title_words else 0.0
    out[:, 14] = math.log1p(n) / math.log1p(20)
    out[best, 15] = 1.0
    # How many candidates the scorer itself finds relevant (its logits are trained with BCE, so
    # sigmoid(logit) is a probability): the cut can read "how many" off these directly.
    prob = torch.sigmoid(logits)
    expected = float(prob.sum())
    out[:, 16] = prob
    out[:, 17] = expected / 4.0
    out[:, 18] = float((prob > 0.5).sum()) / 4.0
    out[:, 19] = (rank + 1 - expected) / 4.0
    return out
