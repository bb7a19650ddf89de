"""What the TRL stages (``bc``, ``dpo``, ``grpo``, ``feedback``) share, and no other stage needs.

- `trl_config`: a stage's TRL config (``trl.SFTConfig``, ``DPOConfig``, ``GRPOConfig``) from its
  `TrainerSettings`: dynrag's shorthands, then the section's ``trainer:`` fields as is, then
  what the stage itself sets;
- `finish_training`: save the trained causal LM as a checkpoint `GenerativeReranker.from_pretrained`
  loads, with its metrics and the run's plot.

Heavy modules (torch, transformers, trl) are imported inside the functions.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from dynrag.training.causal_lm.trainer_settings import TrainerSettings
from dynrag.training.config import SharedConfig
from dynrag.training.rundir import RunDir, is_main_process
from dynrag.training.stages.base import StageContext, write_json

__all__ = ["finish_training", "trained_max_k", "trl_args", "trl_config"]

_FIXED = ("output_dir",)
"""Set by dynrag only: the trainer's folder is where resuming looks."""


def _training_arguments_fields() -> set[str]:
    from transformers import TrainingArguments

    return set(TrainingArguments.__dataclass_fields__)


def trl_args(settings: TrainerSettings, config: SharedConfig, output_dir: Path) -> dict[str, Any]:
    """The arguments every TRL config of a stage shares: dynrag's defaults and shorthands.

    ``settings.trainer`` (passed as is) and the stage's own arguments are added by `trl_config`.
    """
    import torch

    from dynrag.core.generative.backends.transformers import resolve_device

    device = resolve_device(config.device)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    known = _training_arguments_fields()
    args: dict[str, Any] = {
        "output_dir": str(output_dir),
        "save_strategy": "steps",
        "save_total_limit": 2,
        "seed": config.seed,
        "data_seed": config.seed,
        "use_cpu": device.type == "cpu",
        "bf16": bf16,
        "dataloader_num_workers": 0,
    }
    for ours, theirs in settings.TRL_NAMES.items():
        args[theirs] = getattr(settings, ours)
    if "warmup_ratio" not in known:
        # transformers 5 dropped warmup_ratio: a warmup_steps below 1 is that share of the steps.
        args["warmup_steps"] = args.pop("warmup_ratio")
    if "activation_checkpointing" in known:
        # transformers 5 renamed gradient_checkpointing (the old name warns). Always passed:
        # TRL's configs default it to True, which would override dynrag's False.
        args["activation_checkpointing"] = args.pop("gradient_checkpointing")
    return args


def trl_config(
    settings: TrainerSettings, config: SharedConfig, output_dir: Path, **stage_args: Any
) -> Any:
    """The stage's TRL config: `trl_args`, then ``settings.trainer``, then ``stage_args``.

    The class is ``settings.trainer_class`` (e.g. ``trl.SFTConfig``), whose fields
    ``settings.trainer`` was checked against when the config was read.

    Raises:
        ValueError: ``trainer`` sets what the stage sets itself (name the stage's own field).
    """
    module, _, name = settings.trainer_class.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    reserved = sorted(k for k in settings.trainer if k in stage_args or k in _FIXED)
    if reserved:
        msg = (
            f"trainer: {', '.join(reserved)} set by the stage itself; "
            "use the section's own fields (e.g. max_length, num_generations)"
        )
        raise ValueError(msg)
    args = trl_args(settings, config, output_dir)
    for key, value in settings.trainer.items():
        # the shorthand's other name (transformers 4 vs 5) must not stay beside it
        if key in ("gradient_checkpointing", "activation_checkpointing"):
            args.pop("gradient_checkpointing", None)
            args.pop("activation_checkpointing", None)
        args[key] = value
    args.update(stage_args)
    return cls(**args)


def trained_max_k(rd: RunDir, start: str) -> int | None:
    """The largest k the model has been taught: its experts' (or its starting model's)."""
    from dynrag.core.loading import ModelConfig, resolve_model

    experts = rd.path / "bc" / "experts.json"
    if experts.is_file():
        return max((len(e["indices"]) for e in json.loads(experts.read_text())), default=None)
    start_cfg = ModelConfig.read(resolve_model(start).path)
    return start_cfg.max_k if start_cfg else None


def finish_training(
    ctx: StageContext, trainer: Any, tokenizer: Any, extra: dict[str, Any]
) -> dict[str, Any]:
    """Save the trained model to the stage's checkpoint (every process); the stage's outputs.

    The main process also writes merged weights (``save_merged``), ``metrics.json`` and the
    run's plot.
    """
    from dynrag.training.causal_lm.models import merge_checkpoint, save_checkpoint

    rd, start = ctx.rd, ctx.start or ctx.config.model
    checkpoint = save_checkpoint(
        trainer, tokenizer, ctx.checkpoint, rd.config, start, trained_max_k(rd, start)
    )
    if is_main_process():
        if rd.config.save_merged:
            merge_checkpoint(checkpoint, ctx.dir / "merged")
        history = trainer.state.log_history
        write_json(ctx.dir / "metrics.json", {"log_history": history, **extra})
        from dynrag.training.causal_lm.plots import plot_run

        plot_run(rd.path)
    return {"checkpoint": str(checkpoint), "start": start, **extra}
