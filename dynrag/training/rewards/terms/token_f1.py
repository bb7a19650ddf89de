"""``f1``: SQuAD token F1 of the answer, max over gold aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dynrag.eval.metrics import token_f1
from dynrag.training.rewards.terms.base import RewardTerm, TermInput

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer

__all__ = ["TokenF1"]


class TokenF1(RewardTerm):
    """Token-overlap F1 with the best gold alias (an empty answer scores 0)."""

    name = "f1"
    default_weight = 0.2
    description = "token F1 with a gold answer"

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """Token F1, max over aliases."""
        return token_f1(sample.answer, sample.golds)
