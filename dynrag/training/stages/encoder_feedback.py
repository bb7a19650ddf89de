"""``encoder-feedback``: the encoder family fine-tuned on in-house feedback logs.

The logs (`dynrag.training.feedback`: rated selections, or preferred/rejected pairs) become
preference pairs exactly as for the generative family; the chosen selection of each pair is the
target: its passages the ones to put first, its size the cut. The head (order and cut) is then
trained by behaviour cloning on those targets, starting from the run's newest encoder model; the
scorer is kept. Writes ``encoder-feedback/checkpoint/``.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from dynrag.training.encoder.settings import HeadTraining
from dynrag.training.feedback import FeedbackLogs
from dynrag.training.stages.base import StageContext, StageSpec, latest_model_before, write_json

__all__ = ["STAGE", "EncoderFeedbackConfig"]

logger = logging.getLogger(__name__)


class EncoderFeedbackConfig(FeedbackLogs):
    """The ``encoder-feedback:`` section: the logs to read (`FeedbackLogs`), the head's training."""

    head: HeadTraining = Field(default_factory=lambda: HeadTraining(epochs=30, learning_rate=1e-3))


def _run(ctx: StageContext) -> dict[str, Any]:
    from dynrag.data.examples import QAExample
    from dynrag.training.encoder.head import analyse, make_batch, train_head_bc
    from dynrag.training.encoder.start import load_start, save_over_start

    cfg = ctx.config
    settings: EncoderFeedbackConfig = ctx.settings
    start = ctx.start
    assert start is not None
    reranker = load_start("encoder-feedback", start, cfg.device)
    records = settings.records()
    pairs = settings.pairs(records)
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
    input_files=lambda settings: settings.files("encoder-feedback"),
    start=latest_model_before("encoder-feedback"),
    trains=True,
    main_process_only=True,
)
