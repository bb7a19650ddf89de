"""``rouge_l``: ROUGE-L F-measure of the answer (``rouge-score``), max over gold aliases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dynrag.data.examples import normalize_answer
from dynrag.training.rewards.terms.base import RewardTerm, TermInput

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer

__all__ = ["RougeL", "rouge_l"]


def rouge_l(prediction: str, answers: Sequence[str]) -> float:
    """ROUGE-L F-measure, max over gold answers; 0 for an empty prediction."""
    if not normalize_answer(prediction):
        return 0.0
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return max((scorer.score(a, prediction)["rougeL"].fmeasure for a in answers), default=0.0)


class RougeL(RewardTerm):
    """Longest-common-subsequence F-measure with the best gold alias."""

    name = "rouge_l"
    description = "ROUGE-L F-measure with a gold answer"

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """ROUGE-L, max over aliases."""
        return rouge_l(sample.answer, sample.golds)
