"""The settings the causal-LM stages share: their TRL trainer and its LoRA adapter.

`TrainerSettings` is the base of every TRL stage's section (``bc``, ``dpo``, ``grpo``,
``feedback``; each stage module defines its own subclass): dynrag's shorthands with their
defaults, and ``trainer:``, any other field of the stage's TRL config class, checked against it.
`LoraSettings` is its ``lora:`` part. Unknown keys are errors, so typos do not pass silently.
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from dynrag.training.compat import trainer_under_old_name
from dynrag.training.config import StrictSettings

__all__ = ["LoraSettings", "TrainerSettings", "trainer_fields"]


class LoraSettings(StrictSettings):
    """The LoRA adapter trained by PEFT (ignored with ``full_finetune: true``)."""

    r: int = Field(default=16, ge=1, description="Rank of the update matrices.")
    alpha: int = Field(default=32, ge=1, description="Scaling numerator (lora_alpha).")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Dropout on the adapter.")
    target_modules: list[str] | str = Field(
        default="all-linear", description="Modules to adapt; 'all-linear' for every linear layer."
    )
    top_layers: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Adapt only the last N transformer layers (None: all). Back-propagation then stops "
            "at the lowest adapted layer, which makes CPU training several times cheaper."
        ),
    )


def trainer_fields(class_path: str) -> set[str]:
    """The init fields of a trainer config dataclass named ``module.Class`` (imported now)."""
    import dataclasses
    import importlib

    module, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return {f.name for f in dataclasses.fields(cls) if f.init}


class TrainerSettings(StrictSettings):
    """What every TRL trainer of a stage shares.

    The fields here are shorthands with dynrag's defaults (mapped onto TRL's names by
    ``TRL_NAMES``). ``trainer`` passes any other field of the stage's TRL config class
    (``trainer_class``) as is; its keys are checked against that dataclass's fields.
    """

    trainer_class: ClassVar[str] = "transformers.TrainingArguments"
    """The TRL (or transformers) config class ``trainer`` is checked against and built into."""

    TRL_NAMES: ClassVar[dict[str, str]] = {
        "learning_rate": "learning_rate",
        "epochs": "num_train_epochs",
        "max_steps": "max_steps",
        "batch_size": "per_device_train_batch_size",
        "gradient_accumulation_steps": "gradient_accumulation_steps",
        "warmup_ratio": "warmup_ratio",
        "lr_scheduler_type": "lr_scheduler_type",
        "save_steps": "save_steps",
        "logging_steps": "logging_steps",
        "gradient_checkpointing": "gradient_checkpointing",
        "report_to": "report_to",
    }
    """Each shorthand field and the TRL config field it sets."""

    learning_rate: float = Field(default=2e-4, gt=0.0)
    epochs: float = Field(default=1.0, gt=0.0, description="Passes over the stage's data.")
    max_steps: int = Field(default=-1, description="Stop after this many steps (-1: use epochs).")
    batch_size: int = Field(default=1, ge=1, description="Per-device batch size.")
    gradient_accumulation_steps: int = Field(default=4, ge=1)
    warmup_ratio: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Share of steps with a linear warm-up."
    )
    lr_scheduler_type: str = Field(default="linear")
    save_steps: int = Field(default=50, ge=1, description="Checkpoint every N steps (resume).")
    logging_steps: int = Field(default=1, ge=1)
    gradient_checkpointing: bool = Field(default=False)
    full_finetune: bool = Field(
        default=False, description="Train all weights instead of a LoRA adapter."
    )
    lora: LoraSettings = Field(default_factory=LoraSettings)
    max_length: int | None = Field(
        default=None,
        description=(
            "Longest prompt + completion in tokens (None: the longest example). Longer examples "
            "are dropped with a warning, never truncated."
        ),
    )
    report_to: list[str] | str = Field(
        default="none", description="TRL/transformers report_to: 'none', 'tensorboard', 'wandb'."
    )
    trainer: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Any other field of the stage's TRL config class (trl.SFTConfig, DPOConfig, "
            "GRPOConfig), passed as is; unknown keys are errors."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _extra_is_trainer(cls, data: Any) -> Any:
        return trainer_under_old_name(data)

    @field_validator("trainer")
    @classmethod
    def _trainer_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        known = trainer_fields(cls.trainer_class)
        unknown = sorted(k for k in value if k not in known)
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, known, n=1)
                hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
            msg = f"unknown field(s) of {cls.trainer_class}: {', '.join(hints)}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _set_once(self) -> TrainerSettings:
        both = [
            f"{ours} / trainer.{theirs}"
            for ours, theirs in self.TRL_NAMES.items()
            if ours in self.model_fields_set and theirs in self.trainer
        ]
        if both:
            msg = f"set each only once: {', '.join(both)}"
            raise ValueError(msg)
        return self
