"""``em``: SQuAD-normalised exact match of the answer, max over gold aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dynrag.eval.metrics import exact_match
from dynrag.training.rewards.terms.base import RewardTerm, TermInput

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer

__all__ = ["ExactMatch"]


class ExactMatch(RewardTerm):
    """1 when the normalised answer equals a gold alias (an empty answer scores 0)."""

    name = "em"
    default_weight = 0.1
    description = "exact match with a gold answer"

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """Exact match, max over aliases."""
        return exact_match(sample.answer, sample.golds)
