"""What a reward term is: a score in [0, 1] of one selection and the generator's answer from it.

A term is a `RewardTerm` subclass in its own module, registered by one line in
`dynrag.training.rewards.terms`. Its ``name`` is its key in ``reward.weights`` (YAML), in
`RewardTerms` and in the stored samples; ``default_weight`` is its weight when the config names
none. The scorer (`dynrag.training.rewards.engine.RewardScorer`) makes one instance per run and
calls it only when its weight is above 0, so a term may keep a model it loads on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from dynrag.core.types import Passage

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer
    from dynrag.training.rewards.settings import RewardConfig

__all__ = ["RewardTerm", "TermInput"]


@dataclass(frozen=True)
class TermInput:
    """One sample to score."""

    question: str
    passages: Sequence[Passage]
    """All candidates of the question."""
    selection: Sequence[int]
    """0-based positions of the selected candidates, in the reranker's order."""
    answer: str
    """The generator's answer from the selection ('' when no term needs one)."""
    golds: list[str]
    """Gold answers (aliases)."""
    gold_indices: Sequence[int] | None = None
    """Labelled gold positions among ``passages``; None when the data has no labels."""


class RewardTerm:
    """Base class of the reward terms: set the class attributes and implement `score`."""

    name: ClassVar[str]
    """Key in ``reward.weights`` and in the stored terms."""
    default_weight: ClassVar[float] = 0.0
    """Weight when the config gives none."""
    description: ClassVar[str] = ""
    """A few words on what it measures (listed when a config names an unknown term)."""
    needs_answer: ClassVar[bool] = True
    """Whether `score` reads ``TermInput.answer`` (if no weighted term does, none is generated)."""

    def __init__(self, config: RewardConfig, *, device: str | None = None) -> None:
        """Keep the reward config (a term loads its models lazily, on first `score`)."""
        self.config = config
        self.device = device

    @classmethod
    def config_error(cls, config: RewardConfig) -> str | None:
        """Why ``config`` cannot compute this term while it is weighted (None: it can)."""
        return None

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """The term's value for ``sample``, in [0, 1]; ``scorer`` shares the generator."""
        raise NotImplementedError
