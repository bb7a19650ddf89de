"""Selectors: ways of choosing passages for the generator, compared in one `dynrag eval` run.

Spec strings (``--selectors``): ``dynamic``, ``all``, ``first-k:K``, ``embed-k:K1,K2,...``,
``bm25-k:K1,...``, ``hybrid-k:K1,...`` (BM25 + MiniLM, the ``hybrid`` presort's score),
``embed-threshold:T1,...``, ``oracle``, and the trained scorer's own baselines (the scorer of the
first encoder-family reranker given, else the bundled encoder model): ``scorer-k:K1,...`` (its
fixed top-k), ``scorer-threshold:P1,...`` (passages whose sigmoid(logit) is at least P, as
LangChain/FlashRank ``score_threshold`` and LlamaIndex similarity cutoffs do) and ``scorer-gap``
(the largest-gap cut of Adaptive-k, arXiv 2506.08479: k where the sorted scores drop most).
Numbers after a colon may be listed with commas; each makes its own selector
(``embed-k:1,2`` -> ``embed-k:1`` and ``embed-k:2``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dynrag.core.presort import passage_text
from dynrag.data.examples import QAExample

__all__ = [
    "Choice",
    "Selector",
    "build_selectors",
    "largest_gap_k",
    "parse_selector_spec",
    "scorer_logits",
]


@dataclass
class Choice:
    """One selector's choice for one question."""

    indices: list[int]
    seconds: float


class Selector(Protocol):
    """Chooses passages for each example."""

    name: str

    def select(self, examples: Sequence[QAExample]) -> list[Choice]:
        """One `Choice` per example."""
        ...


@dataclass
class AllSelector:
    """Every candidate, in retrieval order."""

    name: str = "all"

    def select(self, examples: Sequence[QAExample]) -> list[Choice]:
        """Every position."""
        return [Choice(list(range(len(ex.passages))), 0.0) for ex in examples]


@dataclass
class FirstK:
    """The first k candidates in retrieval order."""

    k: int
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"first-k:{self.k}"

    def select(self, examples: Sequence[QAExample]) -> list[Choice]:
        """The first ``k`` positions."""
        return [Choice(list(range(min(self.k, len(ex.passages)))), 0.0) for ex in examples]


@dataclass
class Oracle:
    """The gold passages (an upper bound; needs gold labels)."""

    name: str = "oracle"

    def select(self, examples: Sequence[QAExample]) -> list[Choice]:
        """The gold positions."""
        return [Choice(list(ex.gold or []), 0.0) for ex in examples]


class _CandidateScores:
    """Per-example candidate scores, computed once and shared by several selectors."""

    def __init__(self, score: Callable[[QAExample], list[float]]) -> None:
        self._score = score
        self._cache: dict[int, tuple[list[float], float]] = {}

    def __call__(self, example: QAExample) -> tuple[list[float], float]:
        key = id(example)
        if key not in self._cache:
            start = time.perf_counter()
            scores = self._score(example)
            self._cache[key] = (scores, time.perf_counter() - start)
        return self._cache[key]


@dataclass
class Ranked:
    """Candidates ranked by a score (MiniLM cosine, BM25), cut to the top ``k`` or at a cutoff."""

    name: str
    scored: _CandidateScores
    k: int | None = None
    cutoff: float | None = None

    def select(self, examples: Sequence[QAExample]) -> list[Choice]:
        """The best-scoring positions, best first."""
        out = []
        for ex in examples:
            scores, seconds = self.scored(ex)
            order = sorted(range(len(scores)), key=lambda i: -scores[i])
            if self.cutoff is not None:
                order = [i for i in order if scores[i] >= self.cutoff]
            out.append(Choice(order[: self.k], seconds))
        return out


@dataclass
class LargestGap:
    """Candidates ranked by a score and cut where the sorted scores drop the most (k >= 1)."""

    name: str
    scored: _CandidateScores

    def select(self, examples: Sequence[QAExample]) -> list[Choice]:
        """The best-scoring positions down to the largest gap."""
        out = []
        for ex in examples:
            scores, seconds = self.scored(ex)
            order = sorted(range(len(scores)), key=lambda i: -scores[i])
            out.append(Choice(order[: largest_gap_k([scores[i] for i in order])], seconds))
        return out


def largest_gap_k(sorted_scores: Sequence[float]) -> int:
    """1 + the position of the largest drop between consecutive sorted scores (n if n < 2)."""
    if len(sorted_scores) < 2:
        return len(sorted_scores)
    gaps = [sorted_scores[i] - sorted_scores[i + 1] for i in range(len(sorted_scores) - 1)]
    return 1 + max(range(len(gaps)), key=lambda i: (gaps[i], -i))


@dataclass
class Dynamic:
    """A dynamic reranker: the model chooses order and k."""

    name: str
    reranker: Any

    def select(self, examples: Sequence[QAExample]) -> list[Choice]:
        """The reranker's selection for each example."""
        out = []
        for ex in examples:
            sel = self.reranker.rerank(ex.question, ex.passages)
            out.append(Choice(list(sel.indices), sel.rerank_seconds))
        return out


def scorer_logits(rerankers: Sequence[tuple[str, Any]] | None) -> _CandidateScores:
    """The relevance logits of an encoder-family reranker's scorer (``score``), as scores.

    The first reranker given that has a scorer, else the bundled encoder model.
    """
    model: Any = next((rr for _, rr in rerankers or [] if hasattr(rr, "score")), None)
    if model is None:
        from dynrag.core.constants import DEFAULT_MODEL
        from dynrag.core.families import load_reranker

        model = load_reranker(DEFAULT_MODEL)
    return _CandidateScores(lambda ex: model.score(ex.question, ex.passages))


def _sigmoid_cutoff(p: float) -> float:
    """The logit whose sigmoid is ``p``."""
    if not 0 < p < 1:
        msg = f"scorer-threshold takes a probability between 0 and 1, not {p}"
        raise ValueError(msg)
    return math.log(p / (1 - p))


def _passage_text(example: QAExample) -> list[str]:
    return [passage_text(p) for p in example.passages]


def first_stage_minilm(model_path: str | None = None) -> _CandidateScores:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings of the question and each passage.

    The embedder is the one the ``minilm``/``hybrid`` presort uses
    (`dynrag.core.presort.load_minilm`): the bundled weights unless ``model_path`` names others.
    """
    from dynrag.core.presort import load_minilm, minilm_scores

    load_minilm(model_path)  # load now, so the first question's time is not the load time
    return _CandidateScores(lambda ex: minilm_scores(ex.question, _passage_text(ex), model_path))


def first_stage_bm25() -> _CandidateScores:
    """BM25 (bm25s) of the question against each example's own candidates."""
    from dynrag.core.presort import bm25_scores

    return _CandidateScores(lambda example: bm25_scores(example.question, _passage_text(example)))


def first_stage_hybrid() -> _CandidateScores:
    """BM25 + MiniLM, each standardised over the candidates: the ``hybrid`` presort's score."""
    from dynrag.core.presort import hybrid_scores, load_minilm

    load_minilm()
    return _CandidateScores(lambda example: hybrid_scores(example.question, _passage_text(example)))


_ITEM = re.compile(r"^([a-z0-9\-]+)(?::(.*))?$")


def parse_selector_spec(spec: str) -> list[tuple[str, list[str]]]:
    """``"all,embed-k:1,2,oracle"`` -> ``[("all", []), ("embed-k", ["1", "2"]), ("oracle", [])]``.

    Raises:
        ValueError: an item that is neither a selector name nor a number following one.
    """
    items: list[tuple[str, list[str]]] = []
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            if not items or not items[-1][1]:
                msg = f"cannot read selector {raw!r} in {spec!r}: a number must follow name:value"
                raise ValueError(msg)
            items[-1][1].append(raw)
            continue
        match = _ITEM.match(raw)
        if not match:
            msg = f"cannot read selector {raw!r} in {spec!r}"
            raise ValueError(msg)
        items.append((match.group(1), [match.group(2)] if match.group(2) else []))
    return items


def build_selectors(
    spec: str,
    rerankers: Sequence[tuple[str, Any]] | None = None,
    *,
    has_gold: bool = True,
    embed_model: str | None = None,
) -> list[Selector]:
    """Selectors from a spec string (see the module docstring).

    Args:
        spec: The ``--selectors`` value.
        rerankers: ``(label, loaded reranker)`` pairs; ``dynamic`` makes one selector each.
        has_gold: Whether the data has gold passages (``oracle`` is skipped without them).
        embed_model: A sentence-transformers folder for embed selectors (default: MiniLM).

    Raises:
        ValueError: an unknown selector, a missing parameter, or ``dynamic`` without rerankers.
    """
    selectors: list[Selector] = []
    embed: _CandidateScores | None = None
    bm25: _CandidateScores | None = None
    hybrid: _CandidateScores | None = None
    scorer: _CandidateScores | None = None
    for name, params in parse_selector_spec(spec):
        needs_params = name in {
            "first-k",
            "embed-k",
            "bm25-k",
            "hybrid-k",
            "embed-threshold",
            "scorer-k",
            "scorer-threshold",
        }
        if needs_params and not params:
            msg = f"selector {name!r} needs a value, e.g. {name}:2"
            raise ValueError(msg)
        if name == "dynamic":
            if not rerankers:
                msg = "the dynamic selector needs a reranker model"
                raise ValueError(msg)
            selectors.extend(Dynamic(f"dynamic[{label}]", rr) for label, rr in rerankers)
        elif name == "all":
            selectors.append(AllSelector())
        elif name == "oracle":
            if has_gold:
                selectors.append(Oracle())
        elif name == "first-k":
            selectors.extend(FirstK(int(p)) for p in params)
        elif name == "embed-k":
            embed = embed or first_stage_minilm(embed_model)
            selectors.extend(Ranked(f"embed-k:{p}", embed, k=int(p)) for p in params)
        elif name == "embed-threshold":
            embed = embed or first_stage_minilm(embed_model)
            selectors.extend(Ranked(f"embed-threshold:{p}", embed, cutoff=float(p)) for p in params)
        elif name == "bm25-k":
            bm25 = bm25 or first_stage_bm25()
            selectors.extend(Ranked(f"bm25-k:{p}", bm25, k=int(p)) for p in params)
        elif name == "hybrid-k":
            hybrid = hybrid or first_stage_hybrid()
            selectors.extend(Ranked(f"hybrid-k:{p}", hybrid, k=int(p)) for p in params)
        elif name == "scorer-k":
            scorer = scorer or scorer_logits(rerankers)
            selectors.extend(Ranked(f"scorer-k:{p}", scorer, k=int(p)) for p in params)
        elif name == "scorer-threshold":
            cutoffs = [(p, _sigmoid_cutoff(float(p))) for p in params]  # checked before loading
            scorer = scorer or scorer_logits(rerankers)
            selectors.extend(Ranked(f"scorer-threshold:{p}", scorer, cutoff=c) for p, c in cutoffs)
        elif name == "scorer-gap":
            scorer = scorer or scorer_logits(rerankers)
            selectors.append(LargestGap("scorer-gap", scorer))
        else:
            msg = (
                f"unknown selector {name!r}; known: dynamic, all, first-k, embed-k, bm25-k, "
                "hybrid-k, embed-threshold, scorer-k, scorer-threshold, scorer-gap, oracle"
            )
            raise ValueError(msg)
    return selectors
