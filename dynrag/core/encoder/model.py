"""`EncoderReranker`: the encoder family (a cross-encoder scorer plus a listwise cut head).

A model folder holds ``dynrag_config.json`` (``kind: encoder``, the base encoder, the head's
sizes and its calibration temperature), ``scorer/`` (a LoRA adapter and classifier over the base
MiniLM) and ``head.safetensors``. `dynrag.core.families` loads it with `load_encoder`, so
``Reranker.from_pretrained(folder)`` returns an `EncoderReranker`.

For one query: the scorer scores every candidate; the head reads the best ``max_items`` jointly,
reorders them, and gives a distribution over the cut k = 0..M; the chosen k is its mode within
the policy's bounds. ``Selection.stop_probability`` is the calibrated probability that no
further passage is needed: the mass of the cut distribution at k or below.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dynrag.core.constants import BASE_MINILM
from dynrag.core.encoder.features import NUM_FEATURES, candidate_features
from dynrag.core.encoder.head import CutHead, Head, HeadEnsemble, head_inputs
from dynrag.core.encoder.scorer import PairScores, Scorer, pair_text
from dynrag.core.encoder.settings import FIELDS_NEW_AT_DEFAULT, EncoderSettings
from dynrag.core.interface import Reranker
from dynrag.core.loading import ModelConfig, ResolvedModel
from dynrag.core.passages import WORK_CHARS, count_tokens_bounded, cut_texts
from dynrag.core.policy import SelectionPolicy, refuse_unknown
from dynrag.core.presort import bm25_scores
from dynrag.core.types import (
    ParseResult,
    ParseStatus,
    Passage,
    PassageLike,
    Selection,
    no_candidates,
)

__all__ = ["Analysis", "EncoderReranker", "EncoderSettings", "load_encoder"]

logger = logging.getLogger(__name__)

HEAD_FILE = "head.safetensors"
SCORER_DIR = "scorer"


@dataclass
class Analysis:
    """Everything the model computes for one query (used by `rerank`, training and baselines)."""

    passages: list[Passage]
    logits: torch.Tensor
    """``[n]`` scorer logits, in input order."""
    features: torch.Tensor
    """``[n, F]`` listwise features, in input order."""
    hidden: torch.Tensor
    """``[n, H]`` scorer [CLS] states."""
    top: list[int]
    """The head's input: the best ``max_items`` positions by logit, best first."""
    order: list[int]
    """Every position: the head's refined order of ``top``, then the rest by logit."""
    cut_probs: list[float]
    """Calibrated P(k) for k = 0..len(top)."""
    notes: list[str] = field(default_factory=list)
    """What was cut of the input (the query), for ``Selection.notes``."""


class EncoderReranker(Reranker):
    """A cross-encoder scorer and a listwise head that chooses order and k; fast on a CPU.

    Example:
        >>> rr = Reranker.from_pretrained("dynrag-minilm-cut")  # doctest: +SKIP
        >>> sel = rr.rerank("Who wrote Hamlet?", ["Hamlet is a play by Shakespeare.", "..."])
        >>> sel.indices, sel.k, sel.stop_probability  # doctest: +SKIP
    """

    kind = "encoder"

    def __init__(
        self,
        scorer: Scorer,
        head: Head,
        *,
        settings: EncoderSettings | None = None,
        policy: SelectionPolicy | None = None,
    ) -> None:
        """Wrap a loaded scorer and head (see `load_encoder` to read a model folder).

        Raises:
            ValueError: ``similarities: cross`` with a ``similarity_layer`` the scorer lacks.
        """
        self.scorer = scorer
        self.head = head.eval()
        self.settings = settings or EncoderSettings()
        self.policy = policy or SelectionPolicy()
        if self.settings.similarities == "cross":
            layers = int(scorer.cross.config.num_hidden_layers)
            if not -(layers + 1) <= self.settings.similarity_layer <= layers:
                msg = (
                    f"similarity_layer {self.settings.similarity_layer} is not a layer of the "
                    f"scorer (0 the embeddings, 1..{layers}, or -1 the last)"
                )
                raise ValueError(msg)

    @classmethod
    def untrained(
        cls,
        settings: EncoderSettings | None = None,
        *,
        base: str = BASE_MINILM,
        scorer_adapter: Path | None = None,
        device: str | None = None,
        seed: int = 0,
    ) -> EncoderReranker:
        """The base MiniLM (or a trained ``scorer_adapter``) with a freshly initialised head."""
        settings = settings or EncoderSettings()
        scorer = Scorer.load(
            scorer_adapter,
            base=base,
            device=device,
            max_length=settings.max_length,
            embed_max_length=settings.embed_max_length,
            bi_encoder=settings.similarities == "bi-encoder",
        )
        torch.manual_seed(seed)
        return cls(scorer, new_head(settings, scorer), settings=settings)

    # -- analysis --------------------------------------------------------------------------
    def analyse_batch(
        self, queries: Sequence[str], passages_per_query: Sequence[Sequence[PassageLike]]
    ) -> list[Analysis]:
        """Scorer, features and head for each query; every pair scored in one batched pass."""
        return self._analyse(*self._checked(queries, passages_per_query))

    def _analyse(
        self, queries: list[str], passages_per_query: list[list[Passage]]
    ) -> list[Analysis]:
        queries, items, notes = self._bounded(queries, passages_per_query)
        pair_q = [q for q, ps in zip(queries, items, strict=True) for _ in ps]
        texts = [pair_text(p.title, p.text) for ps in items for p in ps]
        cross = self.settings.similarities == "cross"
        pairs = self.scorer.score_pairs(
            pair_q, texts, pooled=cross, pooled_layer=self.settings.similarity_layer
        )
        query_emb, passage_emb = self._embeddings(queries, texts, [len(ps) for ps in items], pairs)
        out: list[Analysis] = []
        start = 0
        for qi, (query, ps) in enumerate(zip(queries, items, strict=True)):
            n = len(ps)
            logits = pairs.logits[start : start + n]
            hidden = pairs.hidden[start : start + n]
            emb = passage_emb[start : start + n]
            bm25 = bm25_scores(query, texts[start : start + n])
            feats = candidate_features(query, ps, logits, bm25, query_emb[qi], emb)
            analysis = self._read(passages_per_query[qi], logits, feats, hidden)  # the caller's
            analysis.notes = notes[qi]
            out.append(analysis)
            start += n
        return out

    def _embeddings(
        self, queries: Sequence[str], texts: Sequence[str], sizes: Sequence[int], pairs: PairScores
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised query and passage embeddings, by the settings' ``similarities``.

        ``cross``: a passage is its pair's pooled passage tokens; a query is the mean of its
        pairs' pooled query tokens (each pair's query tokens have read that passage).
        """
        normalize = torch.nn.functional.normalize
        if pairs.query_states is None or pairs.passage_states is None:
            embeddings = self.scorer.embed([*queries, *texts])
            return embeddings[: len(queries)], embeddings[len(queries) :]
        hidden_size = pairs.query_states.shape[1]
        query_emb = torch.zeros(len(queries), hidden_size)
        start = 0
        for qi, n in enumerate(sizes):
            if n:
                query_emb[qi] = normalize(pairs.query_states[start : start + n].mean(0), dim=-1)
            start += n
        return query_emb, normalize(pairs.passage_states, dim=-1)

    def _bounded(
        self, queries: Sequence[str], items: list[list[Passage]]
    ) -> tuple[list[str], list[list[Passage]], list[list[str]]]:
        """What the model works on: queries, titles and passage text cut to their bounds.

        Queries and titles go to the settings' limits (logged; a cut query is noted), passage
        text to `WORK_CHARS`, so that no input costs more than that.

        The model reads less of a passage still (the cross-encoder's ``max_length``); the work
        bound keeps a huge passage from being tokenized (or BM25-indexed) whole.
        """
        limit_q = self.settings.max_query_tokens
        out_q, notes = [], []
        for cut, was_cut in cut_texts(queries, self.scorer.truncate_many, limit_q):
            if was_cut:
                logger.warning("query cut to %d tokens", limit_q)
            notes.append([f"query cut to {limit_q} tokens"] if was_cut else [])
            out_q.append(cut)
        long_texts = sum(len(p.text) > WORK_CHARS for ps in items for p in ps)
        if long_texts:
            logger.info("%d passages cut to %d characters before scoring", long_texts, WORK_CHARS)
        limit = self.settings.max_title_tokens
        titles = [p.title for ps in items for p in ps if p.title]
        cuts = iter(cut_texts(titles, self.scorer.truncate_many, limit))
        out_items = []
        for ps in items:
            shown = []
            for p in ps:
                title, was_cut = next(cuts) if p.title else (p.title, False)
                update: dict[str, Any] = {"title": title} if was_cut else {}
                if len(p.text) > WORK_CHARS:
                    update["text"] = p.text[:WORK_CHARS]
                shown.append(p.model_copy(update=update) if update else p)
                if was_cut:
                    logger.info("title cut to %d tokens", limit)
            out_items.append(shown)
        return out_q, out_items, notes

    @torch.inference_mode()
    def _read(
        self,
        passages: list[Passage],
        logits: torch.Tensor,
        feats: torch.Tensor,
        hidden: torch.Tensor,
    ) -> Analysis:
        n = len(passages)
        ranked = sorted(range(n), key=lambda i: (-float(logits[i]), i))
        top = ranked[: self.settings.max_items]
        if not top:
            return Analysis(passages, logits, feats, hidden, [], [], [1.0])
        batch = head_inputs([(feats, hidden, top)], self.settings.max_items)
        result = self.head(*batch)
        m = len(top)
        refined = [top[int(j)] for j in result.order[0, :m]]
        probs = torch.softmax(result.cut_logits[0, : m + 1] / self.settings.temperature, dim=-1)
        return Analysis(passages, logits, feats, hidden, top, refined + ranked[m:], probs.tolist())

    def score(self, query: str, passages: Sequence[PassageLike]) -> list[float]:
        """The scorer's relevance logit of each passage (no head): for baselines and users."""
        (query,), (items,) = self._checked([query], [passages])
        texts = [pair_text(p.title, p.text) for p in items]
        return self.scorer.score_pairs([query] * len(items), texts).logits.tolist()

    # -- selection -------------------------------------------------------------------------
    def _rerank_batch(
        self,
        queries: list[str],
        passages_per_query: list[list[Passage]],
        policy: SelectionPolicy,
    ) -> list[Selection]:
        """Every pair scored in one batched pass; the same results as one by one."""
        start = time.perf_counter()
        analyses = self._analyse(queries, passages_per_query)
        seconds = (time.perf_counter() - start) / max(len(analyses), 1)
        return [self._select(a, policy, seconds) for a in analyses]

    def _select(self, a: Analysis, policy: SelectionPolicy, seconds: float) -> Selection:
        n = len(a.passages)
        if n == 0:
            return no_candidates(seconds, stop_probability=1.0)
        m = len(a.top)
        low = policy.floor
        high = m if policy.max_k is None else min(policy.max_k, m)
        if low > high:  # min_k beyond the head's list: keep the order's first min_k
            k, stop = min(low, n), 1.0
        else:
            allowed = range(low, high + 1)
            k = max(allowed, key=lambda j: (a.cut_probs[j], -j))
            stop = float(sum(a.cut_probs[: k + 1]))
        status = ParseStatus.OK if k else ParseStatus.NONE
        parsed = ParseResult(indices=a.order[:k], status=status)
        outcome = policy.apply(parsed, a.passages, self._passage_tokens)
        cut = f"cut k={k} of {m} (p(k)={a.cut_probs[min(k, m)]:.2f})"
        return Selection(
            indices=outcome.indices,
            passages=[a.passages[i] for i in outcome.indices],
            status=outcome.status,
            notes=[cut, *a.notes, *outcome.notes],
            num_candidates=n,
            rerank_seconds=seconds,
            model_calls=1,
            stop_probability=stop,
        )

    def _passage_tokens(self, passage: Passage) -> int:
        return count_tokens_bounded(
            self.scorer.count_tokens, pair_text(passage.title, passage.text)
        )

    # -- saving ----------------------------------------------------------------------------
    def save(self, folder: str | Path, *, scorer_adapter: Path | None, **config: Any) -> Path:
        """Write a model folder `load_encoder` reads: config, head and the scorer's adapter.

        ``config`` adds `ModelConfig` fields (``max_k``, ``base_model``...).
        """
        from safetensors.torch import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, out / HEAD_FILE)
        if scorer_adapter is not None and scorer_adapter.resolve() != (out / SCORER_DIR).resolve():
            shutil.copytree(scorer_adapter, out / SCORER_DIR, dirs_exist_ok=True)
        config.setdefault("base_model", BASE_MINILM)
        # Options at their defaults are left out, so versions without them still read the folder.
        settings = self.settings.model_dump(exclude=_at_default(self.settings))
        fields = {"kind": "encoder", "encoder": settings, **config}
        ModelConfig.model_validate(fields).write(out)
        return out


def _at_default(settings: EncoderSettings) -> set[str]:
    """The `FIELDS_NEW_AT_DEFAULT` that ``settings`` leaves at their defaults."""
    fields = EncoderSettings.model_fields
    return {n for n in FIELDS_NEW_AT_DEFAULT if getattr(settings, n) == fields[n].default}


def new_head(settings: EncoderSettings, scorer: Scorer) -> Head:
    """A freshly initialised head (or ``members`` of them) of ``settings``' sizes."""

    def one() -> CutHead:
        return CutHead(
            NUM_FEATURES,
            int(scorer.cross.config.hidden_size),
            max_items=settings.max_items,
            d_model=settings.d_model,
            heads=settings.heads,
            layers=settings.layers,
            hidden_proj=settings.hidden_proj,
        )

    if settings.members == 1:
        return one()
    return HeadEnsemble([one() for _ in range(settings.members)])


def load_encoder(
    resolved: ResolvedModel,
    *,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    policy: SelectionPolicy | None = None,
    **policy_fields: Any,
) -> EncoderReranker:
    """An `EncoderReranker` from a model folder (the family's loader).

    Args:
        resolved: The folder and its config (``kind: encoder``).
        device: ``cpu`` (default) or a CUDA device.
        dtype: ``float32`` (or None); the scorer is small enough to run in full precision.
        batch_size: Pairs per scorer forward pass (default 32).
        policy: The default policy; or give policy fields (``min_k``, ``max_k``...).
        **policy_fields: `SelectionPolicy` fields; anything else is refused.

    Raises:
        TypeError: an option this family does not take (named).
        ValueError: both ``policy`` and policy fields.
    """
    refuse_unknown("encoder", policy_fields, "device, batch_size, policy")
    if dtype not in (None, "float32", "fp32"):
        msg = f"the encoder family runs in float32; dtype={dtype!r} is not supported"
        raise ValueError(msg)
    config = resolved.config
    policy = SelectionPolicy.for_model(config.max_k, policy, **policy_fields)
    extra = config.model_extra or {}
    settings = EncoderSettings.model_validate(extra.get("encoder", {}))
    adapter = resolved.path / SCORER_DIR
    scorer = Scorer.load(
        adapter if adapter.is_dir() else None,
        base=config.base_model or BASE_MINILM,
        device=device,
        max_length=settings.max_length,
        embed_max_length=settings.embed_max_length,
        batch_size=batch_size or 32,
        bi_encoder=settings.similarities == "bi-encoder",
    )
    head = new_head(settings, scorer)
    from safetensors.torch import load_file

    try:  # a truncated or foreign file is one clear error, not the library's traceback
        head.load_state_dict(load_file(resolved.path / HEAD_FILE))
    except Exception as err:
        msg = f"{resolved.path / HEAD_FILE}: not this model's head ({str(err).splitlines()[0]})"
        raise ValueError(msg) from err
    reranker = EncoderReranker(scorer, head, settings=settings, policy=policy)
    reranker.name_or_path = resolved.name or str(resolved.path)
    return reranker
