"""``brevity``: ``1 - k / N``, the per-passage cost of the sample's own k among N candidates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dynrag.training.rewards.terms.base import RewardTerm, TermInput

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer

__all__ = ["Brevity", "brevity"]


def brevity(k: int, num_candidates: int) -> float:
    """``1 - k/N``: each sample's own k (the published code penalised a constant instead)."""
    if num_candidates <= 0:
        return 1.0
    return 1.0 - min(k, num_candidates) / num_candidates


class Brevity(RewardTerm):
    """Fewer passages, more reward."""

    name = "brevity"
    default_weight = 0.1
    description = "1 - k/N: fewer passages, more"
    needs_answer = False

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """``1 - k/N``."""
        return brevity(len(sample.selection), len(sample.passages))
