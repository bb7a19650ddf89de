"""``feedback``: in-house feedback logs -> preference pairs -> DPO from the run's newest model.

Reads the files of ``feedback.path`` (`dynrag.training.feedback`); writes
``feedback/pairs.jsonl``, ``feedback/trainer/`` and ``feedback/checkpoint/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dynrag.training.config import FeedbackConfig
from dynrag.training.rundir import RunDir, is_main_process
from dynrag.training.stages.base import (
    StageContext,
    StageSpec,
    latest_model_before,
    run_stage,
)

__all__ = ["STAGE", "run_feedback"]


def _feedback_files(settings: FeedbackConfig) -> Sequence[Path]:
    if not settings.path:
        msg = "feedback.path names no file; list the feedback JSONL files in the config"
        raise ValueError(msg)
    return settings.path


def _run(ctx: StageContext) -> dict[str, Any]:
    from dynrag.training.feedback import feedback_pairs, read_feedback
    from dynrag.training.stages.dpo import train_dpo

    settings: FeedbackConfig = ctx.settings
    records = [r for path in settings.path for r in read_feedback(path)]
    pairs = feedback_pairs(records, settings.rating_margin)
    if is_main_process():
        (ctx.dir / "pairs.jsonl").write_text(
            "".join(p.model_dump_json() + "\n" for p in pairs), encoding="utf-8"
        )
    rows = [
        {
            "question": p.query,
            "passages": [x.model_dump() for x in p.passages],
            "chosen": p.chosen,
            "rejected": p.rejected,
        }
        for p in pairs
    ]
    return train_dpo(ctx, rows, settings)


STAGE = StageSpec(
    name="feedback",
    help="in-house feedback logs -> preference pairs -> DPO",
    run=_run,
    settings=FeedbackConfig,
    input_files=_feedback_files,
    start=latest_model_before("feedback"),
    trains=True,
)


def run_feedback(rd: RunDir, *, force: bool = False) -> Path:
    """In-house feedback logs -> preference pairs -> DPO from the run's newest model."""
    return run_stage(STAGE, rd, force=force)
