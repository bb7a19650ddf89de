"""The stage registry: every stage by name, in pipeline order, which the pipeline and CLI read.

The built-in stages are the modules of ``BUILTIN_MODULES``, each defining ``STAGE``; they are
imported on the registry's first use (by module name), so that importing the registry loads no
stage. Code outside this package adds a stage with ``register_stage(spec)``. The config
(`dynrag.training.pipeline.TrainConfig`) validates each stage's section with its ``settings``
class, the run directory hashes it, and the CLI makes one subcommand per stage.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from pydantic import BaseModel

from dynrag.training.config import SharedConfig
from dynrag.training.stages.base import StageSpec

__all__ = [
    "BUILTIN_MODULES",
    "STAGES",
    "StageRegistry",
    "config_sections",
    "get_stage",
    "register_stage",
    "training_stages",
    "unregister_stage",
]

BUILTIN_MODULES = (
    "bc",
    "sample",
    "reward",
    "pairs",
    "dpo",
    "grpo",
    "feedback",
    "encoder_bc",
    "encoder_rl",
    "encoder_feedback",
)
"""The stage modules of `dynrag.training.stages`, in pipeline order: each defines ``STAGE``."""


class StageRegistry(Mapping[str, StageSpec]):
    """Stages by name, in registration order; the built-in ones are registered on first use."""

    def __init__(self, package: str, builtin_modules: tuple[str, ...]) -> None:
        """Register the ``STAGE`` of each of ``package``'s ``builtin_modules`` when first used."""
        self._package = package
        self._builtin_modules = builtin_modules
        self._specs: dict[str, StageSpec] = {}
        self._loaded = False

    def _load(self) -> dict[str, StageSpec]:
        if not self._loaded:
            self._loaded = True  # before importing: a stage module may read the registry
            for name in self._builtin_modules:
                self.register(importlib.import_module(f"{self._package}.{name}").STAGE)
        return self._specs

    def __getitem__(self, name: str) -> StageSpec:
        """The stage ``name`` (KeyError when none)."""
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        """The names, in pipeline order."""
        return iter(list(self._load()))

    def __len__(self) -> int:
        """How many stages are registered."""
        return len(self._load())

    def register(self, spec: StageSpec, *, replace: bool = False) -> StageSpec:
        """Add a stage (see `register_stage`)."""
        specs = self._load()
        if spec.name == "run" or (spec.name in specs and not replace):
            msg = f"a stage named {spec.name!r} is already registered"
            raise ValueError(msg)
        key = spec.config_key
        if key is not None:
            if key in SharedConfig.model_fields:
                msg = f"stage {spec.name!r}: config key {key!r} is a shared field of TrainConfig"
                raise ValueError(msg)
            for other in specs.values():
                shared = other.name != spec.name and other.config_key == key
                if shared and other.settings is not spec.settings:
                    msg = f"stage {spec.name!r}: config key {key!r} is {other.name!r}'s"
                    raise ValueError(msg)
        specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        """Remove a stage (none: nothing happens)."""
        self._load().pop(name, None)


STAGES = StageRegistry(__name__.rpartition(".")[0], BUILTIN_MODULES)
"""Every registered stage by name, in pipeline order (registration order)."""


def register_stage(spec: StageSpec, *, replace: bool = False) -> StageSpec:
    """Add a stage to the registry (returns it, so a module may write ``STAGE = register(...)``).

    Raises:
        ValueError: the name is taken (and not ``replace``), is ``run``, or its config key is
            another stage's with another settings class, or a shared field of the config.
    """
    return STAGES.register(spec, replace=replace)


def unregister_stage(name: str) -> None:
    """Remove a stage (tests that register a toy one clean up with this)."""
    STAGES.unregister(name)


def get_stage(name: str) -> StageSpec:
    """A registered stage by name.

    Raises:
        KeyError: no such stage (the message lists the stages).
    """
    try:
        return STAGES[name]
    except KeyError:
        msg = f"unknown stage {name!r}; stages are {', '.join(STAGES)}"
        raise KeyError(msg) from None


def config_sections() -> dict[str, type[BaseModel]]:
    """``{config key: settings class}`` of every registered stage that has settings."""
    return {
        s.config_key: s.settings
        for s in STAGES.values()
        if s.config_key is not None and s.settings is not None
    }


def training_stages() -> list[str]:
    """The stages that write a model to ``<stage>/checkpoint``, in pipeline order."""
    return [s.name for s in STAGES.values() if s.trains]
