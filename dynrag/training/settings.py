"""The settings classes of the built-in stages: one pydantic model per stage section.

`TrainerSettings` is what every TRL stage shares (dynrag's shorthands with their defaults, and
``trainer:``, any other field of the stage's TRL config class, checked against it). Each
stage's registry entry (`dynrag.training.stages`) names its class; `TrainConfig` validates the
YAML section with it. Unknown keys are errors, so typos do not pass silently.
"""

from __future__ import annotations

import difflib
import math
import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

__all__ = [
    "BCConfig",
    "DPOConfig",
    "FeedbackConfig",
    "GRPOConfig",
    "JudgeConfig",
    "LoraSettings",
    "PairsConfig",
    "RewardConfig",
    "RewardWeights",
    "SampleConfig",
    "TrainerSettings",
    "trainer_fields",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraSettings(_Strict):
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


class TrainerSettings(_Strict):
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
        if isinstance(data, dict) and "extra" in data:
            if "trainer" in data:
                msg = "set trainer only (extra is its deprecated name)"
                raise ValueError(msg)
            warnings.warn(
                "the 'extra' key of a stage section is deprecated: name it 'trainer'",
                FutureWarning,
                stacklevel=2,
            )
            data = {("trainer" if k == "extra" else k): v for k, v in data.items()}
        return data

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


class BCConfig(TrainerSettings):
    """Behaviour cloning: supervised fine-tuning on expert selections (TRL ``SFTTrainer``)."""

    trainer_class: ClassVar[str] = "trl.SFTConfig"

    expert: Literal["gold", "teacher"] = Field(
        default="gold",
        description=(
            "'gold': the labelled supporting passages, ordered by the teacher (questions without "
            "labels fall back to the teacher); 'teacher': the teacher's passages over the cutoff."
        ),
    )
    teacher: str = Field(
        default="minilm",
        description=(
            "Orders (and, without labels, picks) passages: 'minilm' (cosine), 'bm25', "
            "'retrieval' (input order) or 'reranker:<model>' (any dynrag reranker's selection)."
        ),
    )
    teacher_cutoff: float = Field(default=0.45, description="Teacher score a passage must reach.")
    teacher_max_k: int = Field(default=4, ge=1, description="At most this many teacher picks.")
    drop_gold: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Share of the questions with two or more gold passages that are also trained on with"
            " one gold passage taken out of the candidates (target: the gold left). Real"
            " retrieval often misses a supporting passage; these pairs teach that k follows what"
            " the candidates hold, not a fixed habit."
        ),
    )


class SampleConfig(_Strict):
    """Selections sampled from the run's current model for each training question."""

    n: int = Field(default=8, ge=2, description="Samples per question.")
    temperature: float = Field(default=0.7, gt=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    constrained: bool = Field(default=True, description="Decode inside the selection grammar.")
    limit: int | None = Field(default=None, ge=1, description="At most this many questions.")
    backend: Literal["auto", "transformers", "vllm"] = Field(
        default="auto", description="'auto': vLLM when installed with a GPU, else transformers."
    )
    batch_size: int | None = Field(default=None, ge=1, description="Prompts per batch.")


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
    """Weights of the reward terms by name (`dynrag.training.reward_terms`), each term in [0, 1].

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
        from dynrag.training.reward_terms import term_class, term_names

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
        from dynrag.training.reward_terms import term_names

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
        from dynrag.training.reward_terms import BUILTIN_TERMS, term_class

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


class JudgeConfig(_Strict):
    """An LLM that rates an answer from 0 to 100 (normalised to [0, 1])."""

    model: str = Field(description="Judge model: folder, bundled name, hub id or served name.")
    base_url: str | None = Field(
        default=None, description="An OpenAI-compatible server; None loads the model in process."
    )
    api_key: str | None = Field(default=None)
    max_new_tokens: int = Field(default=8, ge=1)


class RewardConfig(_Strict):
    """How each sampled selection is scored: the generator answers from it."""

    generator: str = Field(
        default="smollm2-135m-instruct", description="Answer generator (model folder or name)."
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
        from dynrag.training.reward_terms import term_class

        for name in self.weights.weighted():
            error = term_class(name).config_error(self)
            if error:
                raise ValueError(error)
        return self


class PairsConfig(_Strict):
    """Preference pairs from scored samples: best against worst per question."""

    margin: float = Field(default=0.02, ge=0.0, description="Smallest reward gap kept.")


class DPOConfig(TrainerSettings):
    """Direct preference optimisation on the pairs (TRL ``DPOTrainer``)."""

    trainer_class: ClassVar[str] = "trl.DPOConfig"

    learning_rate: float = Field(default=5e-5, gt=0.0)
    beta: float = Field(default=0.1, gt=0.0)
    loss_type: str = Field(default="sigmoid")


class GRPOConfig(TrainerSettings):
    """Online RL with TRL ``GRPOTrainer``; the reward function calls the generator."""

    trainer_class: ClassVar[str] = "trl.GRPOConfig"

    learning_rate: float = Field(default=1e-5, gt=0.0)
    num_generations: int = Field(default=4, ge=2, description="Samples per question per step.")
    temperature: float = Field(default=0.7, gt=0.0)
    beta: float = Field(default=0.0, ge=0.0, description="KL coefficient (0: no reference).")
    limit: int | None = Field(default=None, ge=1, description="At most this many questions.")
    use_vllm: bool = Field(default=False, description="Generate with vLLM (GPU).")


class FeedbackConfig(DPOConfig):
    """In-house feedback logs turned into preference pairs, then DPO."""

    path: list[Path] = Field(default_factory=list, description="Feedback JSONL files.")
    rating_margin: float = Field(
        default=0.0, ge=0.0, description="Smallest rating gap for a pair built from ratings."
    )
