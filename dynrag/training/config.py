"""Configuration of `dynrag-train`: one pydantic model per stage, gathered in `TrainConfig`.

A YAML file holds a `TrainConfig`; every field has a default, so a config names only what
differs (see ``configs/`` in the repository). Unknown keys are errors, so typos do not pass
silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynrag.core.presort import PresortMethod

__all__ = [
    "BCConfig",
    "DPOConfig",
    "DataConfig",
    "FeedbackConfig",
    "GRPOConfig",
    "JudgeConfig",
    "LoraSettings",
    "PairsConfig",
    "RewardConfig",
    "RewardWeights",
    "SampleConfig",
    "TrainConfig",
    "TrainerSettings",
    "load_config",
]

STAGES = ("bc", "sample", "reward", "pairs", "dpo", "grpo", "feedback")
"""Every stage, in pipeline order."""


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


class TrainerSettings(_Strict):
    """What every TRL trainer of a stage shares (mapped onto TRL's config)."""

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
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Any other field of the TRL config, passed as is."
    )


class DataConfig(_Strict):
    """Training questions: files in any format `dynrag eval` reads."""

    train: list[Path] = Field(default_factory=list, description="Data files for bc/sample/grpo.")
    format: str | None = Field(default=None, description="Force a format (default: detect).")
    limit: int | None = Field(
        default=None, ge=1, description="At most this many per file (after exclusions)."
    )
    file_limits: dict[Path, int] = Field(
        default_factory=dict,
        description=(
            "Per-file limits that override ``limit``, keyed by the path as written in ``train``"
            " (to weight the mix of sources)."
        ),
    )
    exclude: list[Path] = Field(
        default_factory=list,
        description="Files whose questions must never be trained on (e.g. an evaluation split).",
    )

    @model_validator(mode="after")
    def _limits_name_training_files(self) -> DataConfig:
        unknown = [str(p) for p in self.file_limits if p not in self.train]
        if unknown:
            msg = f"data.file_limits names files that are not in data.train: {', '.join(unknown)}"
            raise ValueError(msg)
        low = {str(p): n for p, n in self.file_limits.items() if n < 1}
        if low:
            msg = f"data.file_limits must be at least 1: {low}"
            raise ValueError(msg)
        return self

    def limit_for(self, path: Path) -> int | None:
        """How many questions of ``path`` to keep (None: all)."""
        return self.file_limits.get(path, self.limit)


class BCConfig(TrainerSettings):
    """Behaviour cloning: supervised fine-tuning on expert selections (TRL ``SFTTrainer``)."""

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
    """Selections sampled from the current policy for each training question."""

    n: int = Field(default=8, ge=2, description="Samples per question.")
    temperature: float = Field(default=0.7, gt=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    constrained: bool = Field(default=True, description="Decode inside the selection grammar.")
    limit: int | None = Field(default=None, ge=1, description="At most this many questions.")
    backend: Literal["auto", "transformers", "vllm"] = Field(
        default="auto", description="'auto': vLLM when installed with a GPU, else transformers."
    )
    batch_size: int | None = Field(default=None, ge=1, description="Prompts per batch.")


class RewardWeights(_Strict):
    """Weights of the reward terms; every term is in [0, 1].

    The defaults suit a small generator (SmolLM2-135M): its answers rarely match the gold
    answer, so exact match and F1 seldom tell samples apart, while the likelihood of the gold
    answer does. For a large generator (7B+), set em, f1, rouge_l and semantic to 0.2 each,
    gold_likelihood to 0 and brevity to 0.2, which is the published recipe with a per-sample
    length term.
    """

    em: float = Field(default=0.1, ge=0.0)
    f1: float = Field(default=0.2, ge=0.0)
    rouge_l: float = Field(default=0.0, ge=0.0)
    semantic: float = Field(default=0.0, ge=0.0)
    gold_likelihood: float = Field(default=0.6, ge=0.0)
    brevity: float = Field(default=0.1, ge=0.0, description="1 - k/N: fewer passages, more.")
    judge: float = Field(default=0.0, ge=0.0, description="LLM-judge score / 100.")
    selection: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "F1 of the selection against the labelled gold passages (questions without labels "
            "score 0 on this term). Not generator feedback: supervision carried into RL, so that "
            "samples of one question that differ only in k are told apart."
        ),
    )

    @model_validator(mode="after")
    def _some_weight(self) -> RewardWeights:
        if sum(self.model_dump().values()) <= 0:
            msg = "at least one reward weight must be above 0"
            raise ValueError(msg)
        return self


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
    def _judge_needed(self) -> RewardConfig:
        if self.weights.judge > 0 and self.judge is None:
            msg = "reward.weights.judge > 0 needs a reward.judge section naming the judge model"
            raise ValueError(msg)
        return self


class PairsConfig(_Strict):
    """Preference pairs from scored samples: best against worst per question."""

    margin: float = Field(default=0.02, ge=0.0, description="Smallest reward gap kept.")


class DPOConfig(TrainerSettings):
    """Direct preference optimisation on the pairs (TRL ``DPOTrainer``)."""

    learning_rate: float = Field(default=5e-5, gt=0.0)
    beta: float = Field(default=0.1, gt=0.0)
    loss_type: str = Field(default="sigmoid")


class GRPOConfig(TrainerSettings):
    """Online RL with TRL ``GRPOTrainer``; the reward function calls the generator."""

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


class TrainConfig(_Strict):
    """The whole pipeline (``dynrag-train run --config cfg.yaml``)."""

    model: str = Field(
        default="smollm2-135m-instruct",
        description="Starting model: folder, bundled name or hub id; also the LoRA base.",
    )
    run_dir: Path = Field(default=Path("runs/dynrag"), description="Where every stage writes.")
    seed: int = Field(default=0)
    device: str | None = Field(default=None, description="cpu, cuda... (default: CUDA if any).")
    prompt_format: str = Field(default="dynamicrag-v1")
    max_passage_tokens: int = Field(default=128, ge=8, description="Per passage, as at inference.")
    max_candidates: int = Field(
        default=20, ge=2, description="Candidates shown per question (the first N, after presort)."
    )
    presort: PresortMethod | None = Field(
        default=None,
        description=(
            "Order candidates by bm25, minilm or hybrid scores before cutting to max_candidates "
            "and prompting; recorded in the checkpoint so the reranker applies it at inference "
            "(dynrag.core.presort)."
        ),
    )
    save_merged: bool = Field(
        default=False,
        description="Also write merged full weights beside each adapter (<stage>/merged).",
    )
    stages: list[str] = Field(
        default_factory=lambda: ["bc", "sample", "reward", "pairs", "dpo"],
        description="What `run` executes, in order.",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    bc: BCConfig = Field(default_factory=BCConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    dpo: DPOConfig = Field(default_factory=DPOConfig)
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)

    @model_validator(mode="after")
    def _scores_need_presort(self) -> TrainConfig:
        from dynrag.core.prompts import get_prompt_format

        if get_prompt_format(self.prompt_format).uses_scores and self.presort is None:
            msg = (
                f"prompt_format {self.prompt_format!r} shows first-stage scores: "
                "set presort (bm25, minilm or hybrid)"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _known_stages(self) -> TrainConfig:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            msg = f"unknown stage(s) {unknown}; stages are {', '.join(STAGES)}"
            raise ValueError(msg)
        return self


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML (or JSON) config; relative paths in it are from the current directory.

    Raises:
        ValueError: a missing file or an invalid config (pydantic names the field).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        msg = f"config file not found: {path}"
        raise ValueError(msg)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        msg = f"{path}: the config must be a mapping of fields"
        raise ValueError(msg)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.model_validate(raw)
