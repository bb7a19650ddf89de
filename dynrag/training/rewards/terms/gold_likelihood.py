"""``gold_likelihood``: the generator's probability of the gold answer given the selection.

Teacher-forced: exp of the mean token log-probability of the likeliest gold alias (the first
``reward.max_aliases``). It tells apart samples whose free answers are all wrong, which a small
generator's usually are, and needs no generated answer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dynrag.training.rewards.terms.base import RewardTerm, TermInput

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer

__all__ = ["GoldLikelihood"]


class GoldLikelihood(RewardTerm):
    """exp(mean log-probability) of the likeliest gold alias; needs an in-process generator."""

    name = "gold_likelihood"
    default_weight = 0.6
    description = "generator's probability of the gold answer (teacher-forced)"
    needs_answer = False

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """exp(mean log-probability) of the likeliest gold alias given the selection.

        Raises:
            TypeError: the generator cannot score a continuation (a served one).
        """
        generator = scorer.generator
        backend = generator.backend
        if not hasattr(backend, "continuation_logprob"):
            msg = (
                "reward.weights.gold_likelihood needs an in-process generator (transformers, vLLM)"
            )
            raise TypeError(msg)
        messages = generator.messages(
            sample.question,
            [sample.passages[i] for i in sample.selection],
            [i + 1 for i in sample.selection],
        )
        best = -math.inf
        for gold in sample.golds[: self.config.max_aliases]:
            if gold.strip():
                best = max(best, backend.continuation_logprob(messages, gold))
        return math.exp(best) if best > -math.inf else 0.0
