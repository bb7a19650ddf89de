"""Settings of the encoder family's training (parts of the stages' YAML sections); no torch."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynrag.core.constants import BASE_MINILM

__all__ = ["HeadTraining", "ScorerTraining"]


class ScorerTraining(BaseModel):
    """How the scorer is trained (the ``scorer`` part of an ``encoder-bc`` stage)."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = Field(default=BASE_MINILM, description="Encoder the scorer starts from.")
    max_length: int = Field(
        default=192,
        ge=16,
        description="Not read: the scorer trains at the section's model.max_length (a different "
        "value given here is refused). Kept so that run directories keep their hash.",
    )
    epochs: float = Field(default=1.0, gt=0)
    learning_rate: float = Field(default=2e-4, gt=0)
    queries_per_batch: int = Field(default=4, ge=1)
    negatives: int | None = Field(
        default=6,
        ge=1,
        description="Distractors kept per question, drawn at random (None: all); CPU time.",
    )
    hard_negatives: int = Field(
        default=0,
        ge=0,
        description=(
            "Of the ``negatives``, how many are the distractors BM25 ranks highest for the "
            "question (the look-alikes a cut must reject); the rest are drawn at random."
        ),
    )
    negative_draws: int = Field(
        default=1,
        ge=1,
        description=(
            "Copies of each question, each with its own random distractors (the hard ones "
            "repeat): more distractors seen at the same CPU time per epoch and copy."
        ),
    )
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    pointwise_weight: float = Field(default=1.0, ge=0)
    save_steps: int = Field(default=50, ge=1)
    trainer: dict[str, Any] = Field(
        default_factory=dict,
        description="Any other field of sentence-transformers' CrossEncoderTrainingArguments.",
    )

    @model_validator(mode="after")
    def _distractors_add_up(self) -> ScorerTraining:
        """Hard distractors and fresh draws need a ``negatives`` count to work within."""
        if self.negatives is None and (self.hard_negatives or self.negative_draws > 1):
            msg = "hard_negatives and negative_draws need negatives (a count, not all)"
            raise ValueError(msg)
        if self.negatives is not None and self.hard_negatives > self.negatives:
            msg = f"hard_negatives ({self.hard_negatives}) exceeds negatives ({self.negatives})"
            raise ValueError(msg)
        return self


class HeadTraining(BaseModel):
    """How the head is trained."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=60, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0)
    batch_size: int = Field(default=32, ge=1)
    weight_decay: float = Field(default=0.01, ge=0)
    calibration_fraction: float = Field(
        default=0.15, ge=0, lt=1, description="Training questions held back to fit calibration."
    )
