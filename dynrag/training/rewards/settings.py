"""The ``reward:`` section: how a selection is scored (`dynrag.training.rewards.RewardScorer`).

Read by the stages that score with the generator: ``reward`` (its own section), ``grpo`` and
``encoder-rl`` (both hash it with their own). `RewardWeights` weighs the registered reward
terms (`dynrag.training.rewards.terms`); `JudgeConfig` names the LLM judge of the ``judge`` term.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from dynrag.core.constants import DEFAULT_GENERATOR
from dynrag.training.config import StrictSettings
from dynrag.training.rewards.terms import BUILTIN_TERMS, term_class, term_names

__all__ = ["JudgeConfig", "RewardConfig", "RewardWeights"]


def _weight(name: str, value: Any) -> float:
    """A term's weight as a finite float >= 0 (YAML may give ``1e-2`` as a string).

    Raises:
        ValueError: anything else.
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        msg = f"reward.weights.{name} must be a finite number >= 0, got {value!r}"
        raise ValueError(msg)
    return number


class RewardWeights(BaseModel):
    """Weights of the reward terms by name (`dynrag.training.rewards.terms`), each term in [0, 1].

    Every registered term has a weight (``weights.f1``, `items`); a term the config does not
    name keeps its own ``default_weight``. The defaults suit a small generator (SmolLM2-135M):
    its answers rarely match the gold answer, so exact match and F1 seldom tell samples apart,
    while the likelihood of the gold answer does (em 0.1, f1 0.2, gold_likelihood 0.6, brevity
    0.1). For a large generator (7B+), set em, f1, rouge_l and semantic to 0.2 each,
    gold_likelihood to 0 and brevity to 0.2, which is the published recipe with a per-sample
    length term.
    """

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _registered_terms(cls, data: Any) -> Any:
        if isinstance(data, RewardWeights):
            data = data.items()
        if not isinstance(data, dict):
            msg = f"reward.weights must be a mapping of term names to weights, got {data!r}"
            raise ValueError(msg)
        names = term_names()
        unknown = sorted(set(data) - set(names))
        if unknown:
            known = "; ".join(f"{n} ({term_class(n).description})" for n in names)
            msg = f"unknown reward term(s) {', '.join(unknown)}; registered: {known}"
            raise ValueError(msg)
        out = {n: _weight(n, data.get(n, term_class(n).default_weight)) for n in names}
        if sum(out.values()) <= 0:
            msg = "at least one reward weight must be above 0"
            raise ValueError(msg)
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        """Set a registered term's weight (checked as at construction)."""
        if name not in term_names():
            msg = f"unknown reward term {name!r}; registered: {', '.join(term_names())}"
            raise ValueError(msg)
        super().__setattr__(name, _weight(name, value))

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, float]:
        """The weights as dumped (and hashed): every term but plug-in ones at weight 0.

        A term that is not built in, at weight 0 and with default 0, is left out, so that
        registering it elsewhere does not change a config's dump or its stages' hashes.
        """
        return {
            name: weight
            for name, weight in sorted(self.items().items())
            if weight or name in BUILTIN_TERMS or term_class(name).default_weight
        }

    def items(self) -> dict[str, float]:
        """Every term's weight, by name."""
        return {name: float(value) for name, value in (self.model_extra or {}).items()}

    def weight(self, name: str) -> float:
        """The weight of term ``name`` (0 for a term registered after this was built)."""
        return self.items().get(name, 0.0)

    def weighted(self) -> dict[str, float]:
        """The terms whose weight is above 0."""
        return {name: w for name, w in self.items().items() if w > 0}


class JudgeConfig(StrictSettings):
    """An LLM that rates an answer from 0 to 100 (normalised to [0, 1])."""

    model: str = Field(description="Judge model: folder, bundled name, hub id or served name.")
    base_url: str | None = Field(
        default=None, description="An OpenAI-compatible server; None loads the model in process."
    )
    api_key: str | None = Field(default=None)
    max_new_tokens: int = Field(default=8, ge=1)


class RewardConfig(StrictSettings):
    """How each sampled selection is scored: the generator answers from it."""

    generator: str = Field(
        default=DEFAULT_GENERATOR, description="Answer generator (model folder or name)."
    )
    weights: RewardWeights = Field(default_factory=RewardWeights)
    backend: Literal["auto", "transformers", "vllm"] = Field(
        default="auto", description="'auto': vLLM when installed with a GPU, else transformers."
    )
    max_answer_tokens: int = Field(default=32, ge=1)
    max_passage_tokens: int = Field(
        default=256, ge=1, description="Per passage, for the generator."
    )
    max_aliases: int = Field(default=3, ge=1, description="Gold aliases scored for likelihood.")
    semantic_model: str | None = Field(
        default=None, description="sentence-transformers model (default: the bundled MiniLM)."
    )
    judge: JudgeConfig | None = Field(default=None)

    @model_validator(mode="after")
    def _terms_computable(self) -> RewardConfig:
        for name in self.weights.weighted():
            error = term_class(name).config_error(self)
            if error:
                raise ValueError(error)
        return self
