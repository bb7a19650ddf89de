"""The reward of a selection: the quality of the generator's answer from it.

Every term is in [0, 1] and stored per sample; the reward is their weighted sum
(`dynrag.training.rewards.settings.RewardWeights`). The terms are modules of
`dynrag.training.rewards.terms`, one each, registered there by one line: ``em``, ``f1``,
``rouge_l``, ``semantic``, ``gold_likelihood``, ``brevity``, ``judge`` and ``selection``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynrag.core.types import Passage
from dynrag.training.rewards.settings import RewardConfig, RewardWeights
from dynrag.training.rewards.terms import RewardTerm, TermInput, term_class, term_names

__all__ = ["RewardScorer", "RewardTerms", "ScoredSample", "combine"]

logger = logging.getLogger(__name__)


class RewardTerms(BaseModel):
    """The reward terms of one sample by name, each in [0, 1] (None: not computed, weight 0).

    Every registered term is an attribute (``terms.f1``); `by_name` gives them as a mapping.
    """

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _every_term(cls, data: Any) -> Any:
        if isinstance(data, RewardTerms):
            data = data.by_name()
        if not isinstance(data, dict):
            msg = f"reward terms must be a mapping of term names to values, got {data!r}"
            raise ValueError(msg)
        values: dict[str, float | None] = dict.fromkeys(term_names())
        for name, value in data.items():
            try:
                values[name] = None if value is None else float(value)
            except (TypeError, ValueError):
                msg = f"reward term {name!r} must be a number or None, got {value!r}"
                raise ValueError(msg) from None
        return values

    def by_name(self) -> dict[str, float | None]:
        """Every term's value by name (None where not computed)."""
        return dict(self.model_extra or {})


class ScoredSample(BaseModel):
    """A sampled selection with its reward terms, its reward and the generator's answer.

    ``answer`` is None when no weighted term reads one, and for a ``fallback`` sample.
    """

    text: str
    indices: list[int]
    status: str
    answer: str | None = None
    terms: RewardTerms = Field(default_factory=RewardTerms)
    reward: float = 0.0


def combine(terms: RewardTerms, weights: RewardWeights) -> float:
    """The weighted sum of the terms (a term not computed counts 0)."""
    values = terms.by_name()
    total = 0.0
    for name, weight in weights.weighted().items():
        value = values.get(name)
        if value is not None:
            total += weight * value
    return total


class RewardScorer:
    """Answers from each selection with the generator and scores the answer.

    Terms are made only when their weight is above 0, and load their models lazily. Answers
    are cached per (question, selection), so repeated samples of one question cost one
    generation.
    """

    def __init__(self, config: RewardConfig, *, device: str | None = None) -> None:
        """Prepare the scorer (no model is loaded until first use)."""
        self.config = config
        self.weights = config.weights
        self.device = device
        self._generator: Any = None
        self._terms: dict[str, RewardTerm] = {}
        self._answers: dict[tuple[str, tuple[int, ...]], str] = {}

    @property
    def generator(self) -> Any:
        """The `AnswerGenerator` (loaded on first use)."""
        if self._generator is None:
            from dynrag.core.generative.answer_lm import AnswerGenerator
            from dynrag.training.causal_lm.models import choose_backend

            kwargs: dict[str, Any] = {
                "max_new_tokens": self.config.max_answer_tokens,
                "max_passage_tokens": self.config.max_passage_tokens,
            }
            if choose_backend(self.config.backend) == "vllm":
                from dynrag.core.generative.backends.vllm import VLLMBackend
                from dynrag.core.loading import resolve_model

                path = resolve_model(self.config.generator).path
                self._generator = AnswerGenerator(
                    VLLMBackend(path, gpu_memory_utilization=0.4), **kwargs
                )
            else:
                self._generator = AnswerGenerator.from_pretrained(
                    self.config.generator, device=self.device, **kwargs
                )
        return self._generator

    def answers(
        self,
        key: str,
        question: str,
        passages: Sequence[Passage],
        selections: Sequence[Sequence[int]],
    ) -> list[str]:
        """The generator's greedy answer from each selection (ids as the reranker wrote them)."""
        todo = [tuple(s) for s in dict.fromkeys(tuple(s) for s in selections)]
        todo = [s for s in todo if (key, s) not in self._answers]
        if todo:
            chosen = [[passages[i] for i in s] for s in todo]
            ids = [[i + 1 for i in s] for s in todo]
            outs = self.generator.answer_batch([question] * len(todo), chosen, ids)
            for s, answer in zip(todo, outs, strict=True):
                self._answers[(key, s)] = answer
        return [self._answers[(key, tuple(s))] for s in selections]

    @property
    def needs_answer(self) -> bool:
        """Whether a weighted term reads the generated answer."""
        return any(term_class(name).needs_answer for name in self.weights.weighted())

    def term(self, name: str) -> RewardTerm:
        """The term ``name``, made once per scorer."""
        if name not in self._terms:
            self._terms[name] = term_class(name)(self.config, device=self.device)
        return self._terms[name]

    def terms(
        self,
        question: str,
        passages: Sequence[Passage],
        selection: Sequence[int],
        answer: str,
        golds: list[str],
        gold_indices: Sequence[int] | None = None,
    ) -> RewardTerms:
        """Every term with a weight above 0 for one sample.

        ``gold_indices`` are the labelled gold positions among ``passages`` (None: unlabelled,
        the ``selection`` term then scores 0).
        """
        sample = TermInput(question, passages, selection, answer, golds, gold_indices)
        values = {name: self.term(name).score(sample, self) for name in self.weights.weighted()}
        return RewardTerms(**values)

    def score(
        self,
        key: str,
        question: str,
        passages: Sequence[Passage],
        golds: list[str],
        samples: Sequence[dict[str, Any]],
        gold_indices: Sequence[int] | None = None,
    ) -> list[ScoredSample]:
        """Score the samples of one question (dicts with ``text``, ``indices``, ``status``).

        ``gold_indices``: the labelled gold positions, for the ``selection`` term.

        A sample whose output could not be read as a selection (status ``fallback``) gets
        reward 0 and no answer: writing the format is part of the task. When no weighted term
        reads an answer (`needs_answer`), none is generated and ``answer`` stays None.
        """
        valid = [s for s in samples if s["status"] != "fallback"]
        answers: list[str | None] = [None] * len(valid)  # no weighted term reads one: none made
        if self.needs_answer:
            answers = list(self.answers(key, question, passages, [s["indices"] for s in valid]))
        by_sel = {tuple(s["indices"]): a for s, a in zip(valid, answers, strict=True)}
        cache: dict[tuple[int, ...], tuple[RewardTerms, float]] = {}
        out = []
        for s in samples:
            if s["status"] == "fallback":
                out.append(ScoredSample(**s))
                continue
            sel = tuple(s["indices"])
            answer = by_sel[sel]
            if sel not in cache:
                terms = self.terms(question, passages, sel, answer or "", golds, gold_indices)
                cache[sel] = (terms, combine(terms, self.weights))
            terms, reward = cache[sel]
            out.append(ScoredSample(**s, answer=answer, terms=terms, reward=reward))
        return out
