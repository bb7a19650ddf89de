"""``dpo``: DPO (LoRA by default) on the preference pairs, from the model that sampled them.

Reads ``pairs/pairs.jsonl``; writes ``dpo/trainer/`` (TRL checkpoints, for resuming) and
``dpo/checkpoint/``. `train_dpo` is also the ``feedback`` stage's trainer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from dynrag.data.jsonl import read_jsonl
from dynrag.training.causal_lm.trainer_settings import TrainerSettings
from dynrag.training.compat import sampling_model
from dynrag.training.rundir import RunDir
from dynrag.training.stages.base import StageContext, StageSpec, train_resuming

__all__ = ["STAGE", "DPOConfig", "train_dpo"]


class DPOConfig(TrainerSettings):
    """Direct preference optimisation on the pairs (TRL ``DPOTrainer``)."""

    trainer_class: ClassVar[str] = "trl.DPOConfig"

    learning_rate: float = Field(default=5e-5, gt=0.0)
    beta: float = Field(default=0.1, gt=0.0)
    loss_type: str = Field(default="sigmoid")


def train_dpo(
    ctx: StageContext, pairs: list[dict[str, Any]], settings: DPOConfig
) -> dict[str, Any]:
    """DPO from ``ctx.start`` on pairs ``{question, passages, chosen, rejected[, rejected_text]}``.

    Raises:
        ValueError: no pairs.
    """
    from datasets import Dataset
    from trl import DPOTrainer

    from dynrag.core.types import Passage
    from dynrag.training.causal_lm.data import PromptBuilder, fit_length
    from dynrag.training.causal_lm.models import load_tokenizer, load_trainable_model
    from dynrag.training.stages.trl_support import finish_training, trl_config

    cfg = ctx.config
    stage = ctx.spec.name
    start = ctx.start or cfg.model
    if not pairs:
        msg = (
            f"{stage}: no preference pairs to train on (all ties?); lower the margin or sample more"
        )
        raise ValueError(msg)
    tokenizer = load_tokenizer(start)
    builder = PromptBuilder(tokenizer, cfg.prompt_format, cfg.max_passage_tokens)
    rows = []
    for p in pairs:
        passages = [Passage.model_validate(x) for x in p["passages"]]
        rejected = (
            p["rejected_text"] + tokenizer.eos_token
            if p.get("rejected_text")
            else builder.completion(p["rejected"])
        )
        rows.append(
            {
                "prompt": builder.prompt(p["question"], passages),
                "chosen": builder.completion(p["chosen"]),
                "rejected": rejected,
            }
        )
    rows, max_length = fit_length(rows, builder, settings.max_length, ["chosen", "rejected"])
    model, peft_config = load_trainable_model(start, cfg, settings)
    args = trl_config(
        settings,
        cfg,
        ctx.dir / "trainer",
        max_length=max_length,
        beta=settings.beta,
        loss_type=[settings.loss_type],
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    train_resuming(trainer, ctx.dir / "trainer")
    k_chosen = sum(len(p["chosen"]) for p in pairs) / len(pairs)
    k_rejected = sum(len(p["rejected"]) for p in pairs) / len(pairs)
    extra = {"pairs": len(rows), "mean_k_chosen": k_chosen, "mean_k_rejected": k_rejected}
    return finish_training(ctx, trainer, tokenizer, extra)


def _sampling_model(rd: RunDir) -> str:
    """The model that sampled the pairs (as the sample stage recorded it), else the newest."""
    start = sampling_model(rd.manifest["stages"].get("sample", {}).get("outputs", {}))
    return start or rd.latest_model(before="dpo")


def _run(ctx: StageContext) -> dict[str, Any]:
    pairs = list(read_jsonl(ctx.upstream("pairs/pairs.jsonl")))
    return train_dpo(ctx, pairs, ctx.settings)


STAGE = StageSpec(
    name="dpo",
    help="DPO on the preference pairs",
    run=_run,
    settings=DPOConfig,
    reads=("pairs/pairs.jsonl",),
    start=_sampling_model,
    trains=True,
)
