"""``selection``: F1 of the selected positions against the labelled gold positions.

Supervision, not generator feedback (weight 0 by default): carried into RL so that samples of
one question that differ only in k are told apart. A question without labels scores 0; an empty
selection scores 1 when nothing is gold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dynrag.eval.metrics import selection_prf
from dynrag.training.rewards.terms.base import RewardTerm, TermInput

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer

__all__ = ["SelectionF1"]


class SelectionF1(RewardTerm):
    """Selection F1 against the gold passages (0 for unlabelled questions)."""

    name = "selection"
    description = "F1 of the selection against the labelled gold passages (supervision)"
    needs_answer = False

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """Selection F1; 0 without labels."""
        if sample.gold_indices is None:
            return 0.0
        return selection_prf(sample.selection, sample.gold_indices)[2]
