"""``encoder-bc``: behaviour cloning of the encoder family (scorer on gold labels, then the head).

The training questions are split once (seeded): the scorer trains on one part, and the head
learns on the other, on the scorer's outputs for questions it did not train on (so the head sees
scores as uncertain as they are at inference); a slice of that part is held back to fit the
calibration temperature. Writes ``encoder-bc/scorer/`` (sentence-transformers checkpoints, for
resuming), ``encoder-bc/head.json`` (loss per epoch) and ``encoder-bc/checkpoint/``.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dynrag.core.encoder.settings import EncoderSettings
from dynrag.training.encoder.settings import HeadTraining, ScorerTraining
from dynrag.training.rundir import RunDir
from dynrag.training.stages.base import StageContext, StageSpec, run_stage, write_json

__all__ = ["STAGE", "EncoderBCConfig", "run_encoder_bc", "split_questions"]

logger = logging.getLogger(__name__)


class EncoderBCConfig(BaseModel):
    """The ``encoder-bc:`` section."""

    model_config = ConfigDict(extra="forbid")

    scorer: ScorerTraining = Field(default_factory=ScorerTraining)
    head: HeadTraining = Field(default_factory=HeadTraining)
    model: EncoderSettings = Field(default_factory=EncoderSettings)
    scorer_fraction: float = Field(
        default=0.7, gt=0, lt=1, description="Training questions the scorer trains on."
    )
    max_k: int | None = Field(
        default=None, ge=1, description="The model's default max_k (None: the largest gold count)."
    )


def split_questions(
    count: int, scorer_fraction: float, calibration: float, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Positions of the scorer's, the head's and the calibration's questions (disjoint)."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    cut = round(count * scorer_fraction)
    scorer, rest = sorted(order[:cut]), order[cut:]
    held = round(len(rest) * calibration)
    return scorer, sorted(rest[held:]), sorted(rest[:held])


def _run(ctx: StageContext) -> dict[str, Any]:
    import torch

    from dynrag.training.data import load_train_examples
    from dynrag.training.encoder.head import analyse, fit_temperature, make_batch, train_head_bc
    from dynrag.training.encoder.plots import plot_history
    from dynrag.training.encoder.scorer import train_scorer

    cfg = ctx.config
    settings: EncoderBCConfig = ctx.settings
    examples = [ex for ex in load_train_examples(cfg) if ex.passages]
    sc_idx, head_idx, cal_idx = split_questions(
        len(examples), settings.scorer_fraction, settings.head.calibration_fraction, cfg.seed
    )
    logger.info(
        "encoder-bc: %d questions: scorer %d, head %d, calibration %d",
        len(examples),
        len(sc_idx),
        len(head_idx),
        len(cal_idx),
    )
    # The scorer trains at the model's pair length (a copy: the config is hashed as written).
    scorer_settings = settings.scorer.model_copy(update={"max_length": settings.model.max_length})
    adapter = train_scorer(
        [examples[i] for i in sc_idx],
        ctx.dir / "scorer",
        scorer_settings,
        seed=cfg.seed,
        device=cfg.device,
    )
    from dynrag.core.encoder.model import EncoderReranker

    torch.manual_seed(cfg.seed)
    reranker = EncoderReranker.untrained(
        settings.model.model_copy(),
        base=settings.scorer.base_model,
        scorer_adapter=adapter,
        device=cfg.device,
        seed=cfg.seed,
    )
    rest = [examples[i] for i in [*head_idx, *cal_idx]]
    analyses = analyse(reranker, rest)
    m = settings.model.max_items
    fit = make_batch(analyses[: len(head_idx)], rest[: len(head_idx)], m)
    held = make_batch(analyses[len(head_idx) :], rest[len(head_idx) :], m)
    history = train_head_bc(reranker, fit, settings.head, seed=cfg.seed)
    reranker.settings.temperature = fit_temperature(reranker, held) if len(held) else 1.0
    max_k = settings.max_k or max(len(ex.gold or []) for ex in examples)
    reranker.save(
        ctx.checkpoint,
        scorer_adapter=adapter,
        base_model=settings.scorer.base_model,
        max_k=max_k,
    )
    write_json(
        ctx.dir / "head.json", {"loss": history, "temperature": reranker.settings.temperature}
    )
    plot_history({"head loss (BC)": history}, ctx.dir / "training.png", "epoch")
    return {
        "checkpoint": str(ctx.checkpoint),
        "questions": len(examples),
        "scorer_questions": len(sc_idx),
        "head_questions": len(head_idx),
        "calibration_questions": len(cal_idx),
        "temperature": reranker.settings.temperature,
        "max_k": max_k,
    }


STAGE = StageSpec(
    name="encoder-bc",
    help="encoder family: train the cross-encoder on gold labels, then the listwise cut head",
    run=_run,
    settings=EncoderBCConfig,
    reads_data=True,
    trains=True,
    main_process_only=True,
)


def run_encoder_bc(rd: RunDir, *, force: bool = False) -> Path:
    """Run the ``encoder-bc`` stage of ``rd``'s pipeline."""
    return run_stage(STAGE, rd, force=force)
