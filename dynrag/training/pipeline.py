"""The pipeline: a config validated against the stage registry, and the run of its stages.

`TrainConfig` is the whole YAML file: the shared fields (`dynrag.training.config.SharedConfig`)
plus one section per registered stage that declares settings (``bc:``, ``sample:``,
``encoder-bc:``...), each validated by its stage's settings class (which its stage module
defines) and defaulting to it when absent. `run_pipeline` runs ``config.stages`` in order;
`run_named_stage` runs one stage by name (``dynrag-train <stage>``).

This is the top of ``dynrag.training``'s layers: config and run directory, then the stages,
then their registry, then this module; nothing below imports it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError, model_validator

from dynrag.training.config import SharedConfig
from dynrag.training.rundir import RunDir, is_main_process
from dynrag.training.stages.base import StageSpec, run_stage
from dynrag.training.stages.registry import (
    STAGES,
    config_sections,
    get_stage,
    training_stages,
)

__all__ = ["TrainConfig", "load_config", "run_named_stage", "run_pipeline"]

logger = logging.getLogger(__name__)


class TrainConfig(SharedConfig):
    """The whole pipeline (``dynrag-train run --config cfg.yaml``).

    Besides the shared fields, the config holds one section per registered stage that declares
    settings (``bc:``, ``sample:``, ``reward:``, ...; `dynrag.training.stages`): each is
    validated by its stage's settings class and defaults to it when absent. Read one with
    `section` (``config.bc`` works too, untyped).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    @model_validator(mode="after")
    def _stage_sections(self) -> TrainConfig:
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

    def stage_spec(self, name: str) -> StageSpec:
        """The registered stage ``name``.

        Raises:
            KeyError: no such stage (the message lists the stages).
        """
        return get_stage(name)

    def training_stages(self) -> list[str]:
        """The registered stages that write a model, in pipeline order."""
        return training_stages()


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


def run_named_stage(name: str, rd: RunDir, *, force: bool = False) -> Path:
    """Run the registered stage ``name`` in ``rd`` (`run_stage`); returns its output path.

    Raises:
        KeyError: no such stage.
        StageConflictError: it completed with other settings or inputs (and not ``force``).
        FileNotFoundError: an upstream file is missing.
    """
    return run_stage(get_stage(name), rd, force=force)


def run_pipeline(config: TrainConfig, *, force: bool = False) -> Path:
    """Run ``config.stages`` in order, skipping stages already complete; returns the final model."""
    rd = RunDir(config)
    if is_main_process():
        rd.save()
    for name in config.stages:
        logger.info("stage %s", name)
        run_named_stage(name, rd, force=force)
        rd.reload()
    final = rd.latest_model()
    logger.info("final model: %s", final)
    return Path(final)
