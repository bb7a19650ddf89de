"""``bc``: behaviour cloning, SFT on expert selections (TRL ``SFTTrainer``).

Reads the training questions; writes ``bc/experts.json`` (each question's expert selection),
``bc/trainer/`` (TRL checkpoints, for resuming) and ``bc/checkpoint/``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dynrag.training.config import BCConfig
from dynrag.training.rundir import RunDir, is_main_process
from dynrag.training.stages.base import (
    StageContext,
    StageSpec,
    run_stage,
    train_resuming,
    write_json,
)

__all__ = ["STAGE", "run_bc"]

logger = logging.getLogger(__name__)


def _run(ctx: StageContext) -> dict[str, Any]:
    from datasets import Dataset
    from tqdm.auto import tqdm
    from trl import SFTTrainer

    from dynrag.training.data import (
        PromptBuilder,
        expert_selection,
        fit_length,
        load_train_examples,
        make_teacher,
        with_missing_gold,
    )
    from dynrag.training.models import load_tokenizer, load_trainable_model
    from dynrag.training.stages.trl_support import finish_training, trl_config

    cfg = ctx.config
    bc: BCConfig = ctx.settings
    start = ctx.start or cfg.model
    examples = load_train_examples(cfg)
    if bc.drop_gold > 0:
        extra = with_missing_gold(examples, bc.drop_gold, cfg.seed)
        logger.info("bc: %d copies with one gold passage taken out", len(extra))
        examples = examples + extra
    tokenizer = load_tokenizer(start)
    builder = PromptBuilder(tokenizer, cfg.prompt_format, cfg.max_passage_tokens)
    teacher = make_teacher(bc.teacher, cfg)
    rows, experts = [], []
    for ex in tqdm(examples, desc="bc: expert selections", disable=not is_main_process()):
        selection = expert_selection(ex, bc, teacher)
        experts.append({"id": ex.id, "indices": selection, "gold": ex.gold})
        rows.append(
            {
                "prompt": builder.prompt(ex.question, ex.passages),
                "completion": builder.completion(selection),
            }
        )
    if is_main_process():
        write_json(ctx.dir / "experts.json", experts)
    rows, max_length = fit_length(rows, builder, bc.max_length, ["completion"])
    mean_k = sum(len(e["indices"]) for e in experts) / len(experts)
    logger.info("bc: %d examples, expert mean k %.2f, max length %d", len(rows), mean_k, max_length)
    model, peft_config = load_trainable_model(start, cfg, bc)
    args = trl_config(
        bc,
        cfg,
        ctx.dir / "trainer",
        max_length=max_length,
        completion_only_loss=True,
        packing=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    train_resuming(trainer, ctx.dir / "trainer")
    return finish_training(
        ctx, trainer, tokenizer, {"examples": len(rows), "expert_mean_k": mean_k}
    )


STAGE = StageSpec(
    name="bc",
    help="behaviour cloning: SFT on expert selections",
    run=_run,
    settings=BCConfig,
    reads_data=True,
    start=lambda rd: rd.config.model,
    trains=True,
)


def run_bc(rd: RunDir, *, force: bool = False) -> Path:
    """Behaviour cloning: SFT on expert selections, loss on the completion only."""
    return run_stage(STAGE, rd, force=force)
