"""Answer and selection metrics, and bootstrap confidence intervals.

Answer metrics follow SQuAD: lower-case, strip punctuation and the articles a/an/the, collapse
spaces; the score is the maximum over the gold aliases. An empty prediction scores 0 on every
metric (the reference code's two-way substring test scored it 1).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from dynrag.data.examples import normalize_answer

__all__ = [
    "accuracy",
    "bootstrap_ci",
    "exact_match",
    "ndcg",
    "pair_auc",
    "percentile",
    "selection_prf",
    "token_f1",
]


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction)
    if not pred:
        return 0.0
    return float(any(pred == normalize_answer(a) for a in answers))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if not pred_tokens or not gold_tokens or same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """Token-level F1 of the normalised prediction, maximum over gold answers."""
    pred = normalize_answer(prediction).split()
    return max((_f1(pred, normalize_answer(a).split()) for a in answers), default=0.0)


def accuracy(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when a normalised gold answer appears in the normalised prediction (one way only)."""
    pred = normalize_answer(prediction)
    if not pred:
        return 0.0
    padded = f" {pred} "
    return float(any(normalize_answer(a) and f" {normalize_answer(a)} " in padded for a in answers))


def selection_prf(selected: Sequence[int], gold: Sequence[int]) -> tuple[float, float, float]:
    """Precision, recall and F1 of selected positions against gold positions.

    An empty selection has precision 1 when nothing is gold, else 0; with no gold passage,
    recall is 1.
    """
    chosen, relevant = set(selected), set(gold)
    hits = len(chosen & relevant)
    precision = hits / len(chosen) if chosen else float(not relevant)
    recall = hits / len(relevant) if relevant else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def ndcg(selected: Sequence[int], gold: Sequence[int]) -> float:
    """Normalised DCG of the selected list (binary relevance) against the ideal order."""
    relevant = set(gold)
    if not relevant:
        return 1.0 if not selected else 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank, i in enumerate(selected) if i in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(len(relevant)))
    return dcg / ideal


def pair_auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """How often a positive scores above a negative, over all pairs (ties count half).

    The area under the ROC curve of telling the two groups apart by score (0.5: no signal);
    None when either group is empty.
    """
    if not positive or not negative:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def bootstrap_ci(
    values: Sequence[float], *, samples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap confidence interval of the mean."""
    if not values:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(samples))
    low = means[int((1 - level) / 2 * samples)]
    high = means[min(int((1 + level) / 2 * samples), samples - 1)]
    return (low, high)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
