"""`run_eval`: every selector on the same questions, one generator, per-question records."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from tqdm.auto import tqdm

from dynrag.core.generative.answer_lm import AnswerGenerator
from dynrag.data.examples import QAExample
from dynrag.data.jsonl import appending, read_jsonl
from dynrag.eval.metrics import (
    accuracy,
    bootstrap_ci,
    exact_match,
    ndcg,
    percentile,
    selection_prf,
    token_f1,
)
from dynrag.eval.selectors import Selector

__all__ = [
    "GenerationCache",
    "PairedComparison",
    "QuestionRecord",
    "compare",
    "evaluate",
    "summarize",
]

logger = logging.getLogger(__name__)

QUALITY_METRICS = ("em", "f1", "accuracy", "gold_logprob")
SELECTION_METRICS = ("precision", "recall", "sel_f1", "ndcg")


class QuestionRecord(BaseModel):
    """What one selector did for one question, and how the answer scored."""

    selector: str
    id: str
    question: str
    answers: list[str]
    gold: list[int] | None
    selected: list[int]
    k: int
    prediction: str | None
    """The generator's answer (None: the run scored selections only, ``--no-answers``)."""
    em: float | None
    f1: float | None
    accuracy: float | None
    gold_logprob: float | None
    context_tokens: int
    rerank_seconds: float
    generate_seconds: float
    precision: float | None = None
    recall: float | None = None
    sel_f1: float | None = None
    ndcg: float | None = None


class GenerationCache:
    """Answers and gold log-probabilities keyed by (generator, prompt), kept in a JSONL file.

    Re-runs and new selectors that pick the same passages cost nothing.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            for entry in read_jsonl(path):  # a torn last line (a killed run) is skipped
                self._data[entry["key"]] = entry

    @staticmethod
    def key(*parts: Any) -> str:
        """A stable hash of the parts."""
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, if any."""
        return self._data.get(key)

    def put(self, key: str, **values: Any) -> None:
        """Store an entry (appended to the file at once)."""
        entry = {"key": key, **values}
        with self._lock:
            self._data[key] = entry
            if self.path is not None:
                with appending(self.path) as handle:
                    handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _answer(
    generator: AnswerGenerator,
    generator_id: str,
    cache: GenerationCache,
    example: QAExample,
    selected: list[int],
) -> tuple[str, float, float | None, int]:
    """(prediction, seconds, gold log-prob, context tokens) for one selection."""
    passages = [example.passages[i] for i in selected]
    ids = [i + 1 for i in selected]
    messages = generator.messages(example.question, passages, ids)
    context_tokens = sum(generator.backend.count_tokens(p.text) for p in passages)
    key = GenerationCache.key("answer", generator_id, generator.max_new_tokens, messages)
    hit = cache.get(key)
    if hit is None:
        start = time.perf_counter()
        prediction = generator.chat(messages)
        seconds = time.perf_counter() - start
        cache.put(key, prediction=prediction, seconds=seconds)
    else:
        prediction, seconds = hit["prediction"], hit["seconds"]
    gold_logprob: float | None = None
    if example.answers:
        lp_key = GenerationCache.key("logprob", generator_id, messages, example.answers[0])
        lp_hit = cache.get(lp_key)
        if lp_hit is None:
            scorer = getattr(generator.backend, "continuation_logprob", None)
            if scorer is not None:
                gold_logprob = float(scorer(messages, example.answers[0]))
                cache.put(lp_key, logprob=gold_logprob)
        else:
            gold_logprob = lp_hit["logprob"]
    return prediction, seconds, gold_logprob, context_tokens


def evaluate(
    examples: Sequence[QAExample],
    selectors: Sequence[Selector],
    generator: AnswerGenerator | None,
    *,
    generator_id: str,
    cache: GenerationCache | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> list[QuestionRecord]:
    """Run every selector, answer from each selection, and score each answer.

    Args:
        examples: The questions.
        selectors: What to compare.
        generator: Answers from the selected passages (greedy); None scores the selections
            only (answer metrics are left empty).
        generator_id: Names the generator in the cache key.
        cache: Where answers are kept between runs (in memory when None).
        count_tokens: Counts the context tokens when there is no generator (its tokenizer).

    Raises:
        ValueError: neither a generator nor ``count_tokens``.
    """
    if generator is None and count_tokens is None:
        msg = "evaluate needs a generator, or count_tokens to score selections only"
        raise ValueError(msg)
    cache = cache or GenerationCache(None)
    records: list[QuestionRecord] = []
    for selector in selectors:
        logger.info("selector %s", selector.name)
        choices = selector.select(examples)
        for example, choice in tqdm(
            list(zip(examples, choices, strict=True)), desc=selector.name, unit="q"
        ):
            if generator is None:
                assert count_tokens is not None
                prediction, seconds, gold_logprob = None, 0.0, None
                tokens = sum(count_tokens(example.passages[i].text) for i in choice.indices)
            else:
                prediction, seconds, gold_logprob, tokens = _answer(
                    generator, generator_id, cache, example, choice.indices
                )
            record = QuestionRecord(
                selector=selector.name,
                id=example.id,
                question=example.question,
                answers=example.answers,
                gold=example.gold,
                selected=choice.indices,
                k=len(choice.indices),
                prediction=prediction,
                em=None if prediction is None else exact_match(prediction, example.answers),
                f1=None if prediction is None else token_f1(prediction, example.answers),
                accuracy=None if prediction is None else accuracy(prediction, example.answers),
                gold_logprob=gold_logprob,
                context_tokens=tokens,
                rerank_seconds=choice.seconds,
                generate_seconds=seconds,
            )
            if example.gold is not None:
                p, r, f = selection_prf(choice.indices, example.gold)
                record.precision, record.recall, record.sel_f1 = p, r, f
                record.ndcg = ndcg(choice.indices, example.gold)
            records.append(record)
    return records


class SelectorSummary(BaseModel):
    """Every summary number of one selector, computed from its per-question records."""

    selector: str
    questions: int
    means: dict[str, float | None] = Field(default_factory=dict)
    ci95: dict[str, tuple[float, float]] = Field(default_factory=dict)
    k_distribution: dict[int, int] = Field(default_factory=dict)
    latency: dict[str, float] = Field(default_factory=dict)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(records: Sequence[QuestionRecord]) -> list[SelectorSummary]:
    """Per-selector means, 95% bootstrap intervals, k distribution and latencies."""
    by_selector: dict[str, list[QuestionRecord]] = {}
    for record in records:
        by_selector.setdefault(record.selector, []).append(record)
    summaries = []
    for name, rows in by_selector.items():
        summary = SelectorSummary(selector=name, questions=len(rows))
        for metric in (*QUALITY_METRICS, *SELECTION_METRICS):
            values = [v for r in rows if (v := getattr(r, metric)) is not None]
            summary.means[metric] = _mean(values)
            if values and metric in (*QUALITY_METRICS, "sel_f1"):
                summary.ci95[metric] = bootstrap_ci(values)
        summary.means["k"] = _mean([float(r.k) for r in rows])
        summary.means["context_tokens"] = _mean([float(r.context_tokens) for r in rows])
        summary.k_distribution = dict(sorted(Counter(r.k for r in rows).items()))
        for kind in ("rerank", "generate"):
            values = [getattr(r, f"{kind}_seconds") for r in rows]
            summary.latency[f"{kind}_mean"] = sum(values) / len(values)
            summary.latency[f"{kind}_p50"] = percentile(values, 50)
            summary.latency[f"{kind}_p95"] = percentile(values, 95)
        summaries.append(summary)
    return summaries


class PairedComparison(BaseModel):
    """One dynamic selector against one baseline, question by question.

    The difference is taken on each question both selectors answered, so the interval (a
    percentile bootstrap over questions, resampled jointly) is far tighter than comparing two
    separate intervals would suggest, and it says whether "beats the baseline" is more than noise.
    """

    selector: str
    baseline: str
    metric: str
    questions: int
    mean_difference: float
    ci95: tuple[float, float]
    wins: int
    ties: int
    losses: int


def compare(records: Sequence[QuestionRecord], metric: str = "sel_f1") -> list[PairedComparison]:
    """Each ``dynamic*`` selector against every other selector but ``oracle``, on ``metric``.

    Returns nothing where the metric is missing (no gold passages, or selections only for an
    answer metric).
    """
    # Key on (id, how often the selector met that id before): reports written before ids were
    # made unique (`read_examples`) repeat some, and each selector's records are in data order.
    values: dict[str, dict[tuple[str, int], float]] = {}
    seen: Counter[tuple[str, str]] = Counter()
    for record in records:
        occurrence = seen[(record.selector, record.id)]
        seen[(record.selector, record.id)] += 1
        value = getattr(record, metric)
        if value is not None:
            values.setdefault(record.selector, {})[(record.id, occurrence)] = float(value)
    dynamic = [name for name in values if name.startswith("dynamic")]
    baselines = [name for name in values if not name.startswith("dynamic") and name != "oracle"]
    comparisons = []
    for name in dynamic:
        for baseline in baselines:
            shared = [q for q in values[name] if q in values[baseline]]
            if not shared:
                continue
            diffs = [values[name][q] - values[baseline][q] for q in shared]
            comparisons.append(
                PairedComparison(
                    selector=name,
                    baseline=baseline,
                    metric=metric,
                    questions=len(shared),
                    mean_difference=sum(diffs) / len(diffs),
                    ci95=bootstrap_ci(diffs),
                    wins=sum(d > 0 for d in diffs),
                    ties=sum(d == 0 for d in diffs),
                    losses=sum(d < 0 for d in diffs),
                )
            )
    return comparisons
