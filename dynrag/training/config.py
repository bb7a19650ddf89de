"""Configuration of `dynrag-train`: shared settings, plus one section per registered stage.

A YAML file holds a `TrainConfig`; every field has a default, so a config names only what
differs (see ``configs/`` in the repository). Unknown keys are errors, so typos do not pass
silently. Which stage sections exist, and which class each one is, comes from the stage
registry (`dynrag.training.stages`): a stage's ``config_key`` is its YAML section and its
``settings`` class validates it. The built-in stages' classes are in `dynrag.training.settings`
(importable from here too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dynrag.core.presort import PresortMethod
from dynrag.training.settings import (
    BCConfig,
    DPOConfig,
    FeedbackConfig,
    GRPOConfig,
    JudgeConfig,
    LoraSettings,
    PairsConfig,
    RewardConfig,
    RewardWeights,
    SampleConfig,
    TrainerSettings,
    _Strict,
    trainer_fields,
)

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
    "trainer_fields",
]

_S = TypeVar("_S", bound=BaseModel)


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


class TrainConfig(_Strict):
    """The whole pipeline (``dynrag-train run --config cfg.yaml``).

    Besides the fields below, the config holds one section per registered stage that declares
    settings (``bc:``, ``sample:``, ``reward:``, ...; `dynrag.training.stages`): each is
    validated by its stage's settings class and defaults to it when absent. Read one with
    `section` (``config.bc`` works too, untyped).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

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
    def _stage_sections(self) -> TrainConfig:
        from dynrag.training.stages import STAGES, config_sections

        sections = config_sections()
        extra = self.__pydantic_extra__
        assert extra is not None  # extra="allow"
        unknown = [k for k in extra if k not in sections]
        if unknown:
            msg = (
                f"unknown key(s) {unknown}; stage sections are {', '.join(sections)}, "
                f"other fields {', '.join(type(self).model_fields)}"
            )
            raise ValueError(msg)
        for key, cls in sections.items():
            raw = extra.get(key)
            if isinstance(raw, cls):
                continue
            try:
                extra[key] = cls.model_validate({} if raw is None else raw)
            except ValidationError as err:
                lines = [
                    ".".join(map(str, (key, *e["loc"])))
                    + ": "
                    + e["msg"].removeprefix("Value error, ")
                    for e in err.errors()
                ]
                raise ValueError("; ".join(lines)) from None
        ordered = {key: extra[key] for key in sections}  # registry order, as dumped
        extra.clear()
        extra.update(ordered)
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            msg = f"unknown stage(s) {unknown}; stages are {', '.join(STAGES)}"
            raise ValueError(msg)
        return self

    @overload
    def section(self, key: str) -> Any: ...

    @overload
    def section(self, key: str, cls: type[_S]) -> _S: ...

    def section(self, key: str, cls: type[_S] | None = None) -> Any:
        """A stage's config section by its key; with ``cls``, checked to be one (and typed so).

        Raises:
            KeyError: no registered stage has that section.
        """
        extra = self.__pydantic_extra__ or {}
        if key not in extra:
            msg = f"no config section {key!r}"
            raise KeyError(msg)
        value = extra[key]
        if cls is not None and not isinstance(value, cls):
            msg = f"config section {key!r} is a {type(value).__name__}, not a {cls.__name__}"
            raise TypeError(msg)
        return value


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
