"""The shared settings of a `dynrag-train` config: the fields every stage reads.

A YAML file holds a `dynrag.training.pipeline.TrainConfig`: the fields of `SharedConfig` below,
plus one section per registered stage (``bc:``, ``sample:``, ``encoder-bc:``...), each
validated by its stage's settings class, which its stage module defines. Every field has a
default, so a config names only what differs (see ``configs/`` in the repository). Unknown
keys are errors, so typos do not pass silently.

This module is the bottom layer of ``dynrag.training``: it imports no other module of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynrag.core.constants import DEFAULT_GENERATOR, DEFAULT_PROMPT_FORMAT
from dynrag.core.presort import PresortMethod

__all__ = ["DataConfig", "SharedConfig", "StrictSettings"]

_S = TypeVar("_S", bound=BaseModel)


class StrictSettings(BaseModel):
    """A settings class whose unknown keys are errors and whose assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(StrictSettings):
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


class SharedConfig(BaseModel):
    """The fields of a pipeline config that every stage shares; the stage sections are extra.

    `dynrag.training.pipeline.TrainConfig` is this class with its stage sections validated
    against the stage registry; it is what the stages, the run directory and the CLI get. The
    two methods that name stages (`stage_spec`, `training_stages`) are answered there.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    model: str = Field(
        default=DEFAULT_GENERATOR,
        description="Starting model: folder, bundled name or hub id; also the LoRA base.",
    )
    run_dir: Path = Field(default=Path("runs/dynrag"), description="Where every stage writes.")
    seed: int = Field(default=0)
    device: str | None = Field(default=None, description="cpu, cuda... (default: CUDA if any).")
    prompt_format: str = Field(default=DEFAULT_PROMPT_FORMAT)
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
    def _scores_need_presort(self) -> SharedConfig:
        from dynrag.core.generative.prompts import get_prompt_format

        if get_prompt_format(self.prompt_format).uses_scores and self.presort is None:
            msg = (
                f"prompt_format {self.prompt_format!r} shows first-stage scores: "
                "set presort (bm25, minilm or hybrid)"
            )
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

    def section_class(self, key: str) -> type[BaseModel] | None:
        """The settings class of section ``key`` (None: the config has no such section)."""
        extra = self.__pydantic_extra__ or {}
        value = extra.get(key)
        return type(value) if isinstance(value, BaseModel) else None

    def stage_spec(self, name: str) -> Any:
        """The registered stage ``name`` (a `StageSpec`); see `pipeline.TrainConfig`.

        Raises:
            NotImplementedError: this config was not validated against the stage registry.
        """
        msg = "a config that names stages is a dynrag.training.pipeline.TrainConfig"
        raise NotImplementedError(msg)

    def training_stages(self) -> list[str]:
        """The stages that write a model, in pipeline order; see `pipeline.TrainConfig`.

        Raises:
            NotImplementedError: this config was not validated against the stage registry.
        """
        msg = "a config that names stages is a dynrag.training.pipeline.TrainConfig"
        raise NotImplementedError(msg)
