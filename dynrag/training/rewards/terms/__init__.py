"""The reward terms: one module each, registered here by one line.

A new term is a `RewardTerm` subclass in a new module (see `base`) plus one line in
`REWARD_TERMS`; its name is then a key of ``reward.weights`` in the YAML, of `RewardTerms` and of
the stored samples. Code outside the package registers with ``REWARD_TERMS.register(name,
TermClass)``. Modules are imported when the config is validated, so a term's module must not
import torch or a model at import time (load them in `RewardTerm.score`).
"""

from __future__ import annotations

from dynrag.core.registry import LazyRegistry
from dynrag.training.rewards.terms.base import RewardTerm, TermInput

__all__ = [
    "BUILTIN_TERMS",
    "REWARD_TERMS",
    "RewardTerm",
    "TermInput",
    "term_class",
    "term_names",
]

_PKG = "dynrag.training.rewards.terms"

REWARD_TERMS: LazyRegistry[type[RewardTerm]] = LazyRegistry(
    "reward term",
    {
        "em": f"{_PKG}.exact_match:ExactMatch",
        "f1": f"{_PKG}.token_f1:TokenF1",
        "rouge_l": f"{_PKG}.rouge:RougeL",
        "semantic": f"{_PKG}.semantic:Semantic",
        "gold_likelihood": f"{_PKG}.gold_likelihood:GoldLikelihood",
        "brevity": f"{_PKG}.brevity:Brevity",
        "judge": f"{_PKG}.judge:Judge",
        "selection": f"{_PKG}.selection:SelectionF1",
    },
)
"""Every reward term by name."""

BUILTIN_TERMS = frozenset(REWARD_TERMS.names())
"""The terms registered above (always in a config's dump of the weights)."""


def term_names() -> list[str]:
    """The registered terms' names, sorted."""
    return REWARD_TERMS.names()


def term_class(name: str) -> type[RewardTerm]:
    """The term ``name``.

    Raises:
        ValueError: no such term; the message lists the registered ones.
    """
    return REWARD_TERMS.get(name)
