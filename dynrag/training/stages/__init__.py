"""The stages of `dynrag-train` and their registry, which the config, run directory and CLI read.

``bc`` -> ``sample`` -> ``reward`` -> ``pairs`` -> ``dpo`` is the published recipe (behaviour
cloning, then DPO on the best and worst of n samples scored by the generator). ``grpo`` is the
online alternative and ``feedback`` trains on in-house logs. Every stage runs through one
skeleton (`dynrag.training.stages.base.run_stage`): it is seeded, records its inputs in the
manifest, is skipped when already complete, and resumes when interrupted.

Adding a stage
--------------
1. Write one module here, e.g. ``encoder_bc.py``, that defines ``STAGE``::

       class EncoderBCConfig(BaseModel):  # its YAML section (extra="forbid" recommended)
           epochs: int = 1

       def _run(ctx: StageContext) -> dict[str, Any]:
           import torch  # heavy imports here, so that `dynrag-train --help` stays fast

           settings: EncoderBCConfig = ctx.settings  # the validated ``encoder-bc:`` section
           start = ctx.start  # the model it starts from (``start=`` below)
           rows = ctx.upstream("bc/experts.json")  # a file it declared in ``reads``
           ...  # train, writing under ctx.dir (its folder); models go to ctx.checkpoint
           return {"checkpoint": str(ctx.checkpoint)}  # recorded in the manifest

       STAGE = StageSpec(
           name="encoder-bc",
           help="one line for dynrag-train --help",
           run=_run,
           settings=EncoderBCConfig,  # config_key defaults to the name: ``encoder-bc:``
           reads=("bc/experts.json",),
           start=latest_model_before("encoder-bc"),  # or lambda rd: rd.config.model
           trains=True,  # writes <name>/checkpoint that later stages start from
       )

2. Add its module name to ``BUILTIN_MODULES`` below (pipeline order). That is all: the config
   accepts ``encoder-bc`` in ``stages:`` and validates its section, the run directory hashes
   that section and counts its checkpoint, and the CLI gets an ``encoder-bc`` subcommand.

Code outside this package may instead call ``register_stage(spec)`` (the tests do). TRL stages
build their trainer config with `dynrag.training.stages.trl_support`; nothing else here
assumes TRL or a causal LM.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from dynrag.training.stages.base import (
    StageContext,
    StageSpec,
    last_complete_checkpoint,
    latest_model_before,
    run_stage,
)

if TYPE_CHECKING:
    from dynrag.training.config import TrainConfig
    from dynrag.training.rundir import RunDir

__all__ = [
    "BUILTIN_MODULES",
    "STAGES",
    "STAGE_FUNCTIONS",
    "SelectionReward",
    "StageContext",
    "StageSpec",
    "best_worst_pair",
    "config_sections",
    "get_stage",
    "last_complete_checkpoint",
    "latest_model_before",
    "register_stage",
    "run_bc",
    "run_dpo",
    "run_feedback",
    "run_grpo",
    "run_pairs",
    "run_pipeline",
    "run_reward",
    "run_sample",
    "run_stage",
    "sample_selections",
    "training_stages",
    "unregister_stage",
]

logger = logging.getLogger(__name__)

STAGES: dict[str, StageSpec] = {}
"""Every registered stage by name, in pipeline order (registration order)."""


def register_stage(spec: StageSpec, *, replace: bool = False) -> StageSpec:
    """Add a stage to the registry (returns it, so a module may write ``STAGE = register(...)``).

    Raises:
        ValueError: the name is taken (and not ``replace``), is ``run``, or its config key is
            another stage's with another settings class, or a shared field of the config.
    """
    from dynrag.training.config import TrainConfig

    if spec.name == "run" or (spec.name in STAGES and not replace):
        msg = f"a stage named {spec.name!r} is already registered"
        raise ValueError(msg)
    key = spec.config_key
    if key is not None:
        if key in TrainConfig.model_fields:
            msg = f"stage {spec.name!r}: config key {key!r} is a shared field of TrainConfig"
            raise ValueError(msg)
        for other in STAGES.values():
            shared = other.name != spec.name and other.config_key == key
            if shared and other.settings is not spec.settings:
                msg = f"stage {spec.name!r}: config key {key!r} is {other.name!r}'s"
                raise ValueError(msg)
    STAGES[spec.name] = spec
    return spec


def unregister_stage(name: str) -> None:
    """Remove a stage (tests that register a toy one clean up with this)."""
    STAGES.pop(name, None)


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


class _StageFunctions(Mapping[str, Callable[..., Path]]):
    """``{name: run(rd, *, force=False)}`` over the live registry (kept for older callers)."""

    def __getitem__(self, name: str) -> Callable[..., Path]:
        spec = get_stage(name)

        def run(rd: RunDir, *, force: bool = False) -> Path:
            return run_stage(spec, rd, force=force)

        return run

    def __iter__(self) -> Iterator[str]:
        return iter(list(STAGES))

    def __len__(self) -> int:
        return len(STAGES)


STAGE_FUNCTIONS: Mapping[str, Callable[..., Path]] = _StageFunctions()
"""Each stage's function, by name (``STAGE_FUNCTIONS["bc"](rd, force=False)``)."""


def run_pipeline(config: TrainConfig, *, force: bool = False) -> Path:
    """Run ``config.stages`` in order, skipping stages already complete; returns the final model."""
    from dynrag.training.rundir import RunDir, is_main_process

    rd = RunDir(config)
    if is_main_process():
        rd.save()
    for name in config.stages:
        logger.info("stage %s", name)
        run_stage(get_stage(name), rd, force=force)
        rd.manifest = rd._load()
    final = rd.latest_model()
    logger.info("final model: %s", final)
    return Path(final)


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
"""The stage modules of this package, in pipeline order: each defines ``STAGE``."""

for _name in BUILTIN_MODULES:
    register_stage(importlib.import_module(f"{__name__}.{_name}").STAGE)

# Names older code imports from ``dynrag.training.stages``.
from dynrag.training.stages.bc import run_bc  # noqa: E402
from dynrag.training.stages.dpo import run_dpo  # noqa: E402
from dynrag.training.stages.feedback import run_feedback  # noqa: E402
from dynrag.training.stages.grpo import SelectionReward, run_grpo  # noqa: E402
from dynrag.training.stages.pairs import best_worst_pair, run_pairs  # noqa: E402
from dynrag.training.stages.reward import run_reward  # noqa: E402
from dynrag.training.stages.sample import run_sample, sample_selections  # noqa: E402
