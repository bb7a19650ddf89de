"""``encoder-feedback``: the encoder family fine-tuned on in-house feedback logs.

The logs (`dynrag.training.feedback`: rated selections, or preferred/rejected pairs) become
preference pairs exactly as for the generative family; the chosen selection of each pair is the
target: its passages the ones to put first, its size the cut. The head (order and cut) is then
trained by behaviour cloning on those targets, starting from the run's newest encoder model; the
scorer is kept. Writes ``encoder-feedback/checkpoint/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dynrag.training.encoder.settings import HeadTraining
from dynrag.training.rundir import RunDir
from dynrag.training.stages.base import (
    StageContext,
    StageSpec,
    latest_model_before,
    run_stage,
    write_json,
)

__all__ = ["STAGE", "EncoderFeedbackConfig", "run_encoder_feedback"]

logger = logging.getLogger(__name__)


class EncoderFeedbackConfig(BaseModel):
    """The ``encoder-feedback:`` section."""

    model_config = ConfigDict(extra="forbid")

    path: list[Path] = Field(default_factory=list, description="Feedback JSONL files.")
    rating_margin: float = Field(
        default=0.0, ge=0.0, description="Smallest rating gap for a pair built from ratings."
    )
    head: HeadTraining = Field(default_factory=lambda: HeadTraining(epochs=30, learning_rate=1e-3))


def _files(settings: Any) -> Sequence[Path]:
    if not settings.path:
        msg = "encoder-feedback.path names no file; list the feedback JSONL files in the config"
        raise ValueError(msg)
    return list(settings.path)


def _run(ctx: StageContext) -> dict[str, Any]:
    from dynrag.data.examples import QAExample
    from dynrag.training.encoder.head import analyse, make_batch, train_head_bc
    from dynrag.training.encoder.start import load_start, save_over_start
    from dynrag.training.feedback import feedback_pairs, read_feedback

    cfg = ctx.config
    settings: EncoderFeedbackConfig = ctx.settings
    start = ctx.start
    assert start is not None
    reranker = load_start("encoder-feedback", start, cfg.device)
    records = [r for path in settings.path for r in read_feedback(path)]
    pairs = feedback_pairs(records, settings.rating_margin)
    if not pairs:
        msg = "the feedback logs give no preference pair (ratings all equal?)"
        raise ValueError(msg)
    examples = [
        QAExample(
            id=f"feedback:{i}", question=p.query, answers=[], passages=p.passages, gold=p.chosen
        )
        for i, p in enumerate(pairs)
    ]
    m = reranker.settings.max_items
    batch = make_batch(analyse(reranker, examples), examples, m)
    history = train_head_bc(reranker, batch, settings.head, seed=cfg.seed)
    save_over_start(reranker, ctx.checkpoint, start)
    write_json(ctx.dir / "head.json", {"loss": history, "pairs": len(pairs)})
    logger.info("encoder-feedback: %d pairs from %d records", len(pairs), len(records))
    return {"checkpoint": str(ctx.checkpoint), "pairs": len(pairs), "records": len(records)}


STAGE = StageSpec(
    name="encoder-feedback",
    help="encoder family: fine-tune order and cut on in-house feedback logs",
    run=_run,
    settings=EncoderFeedbackConfig,
    input_files=_files,
    start=latest_model_before("encoder-feedback"),
    trains=True,
    main_process_only=True,
)


def run_encoder_feedback(rd: RunDir, *, force: bool = False) -> Path:
    """Run the ``encoder-feedback`` stage of ``rd``'s pipeline."""
    return run_stage(STAGE, rd, force=force)
