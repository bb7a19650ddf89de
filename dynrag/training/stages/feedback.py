"""``feedback``: in-house feedback logs -> preference pairs -> DPO from the run's newest model.

Reads the files of ``feedback.path`` (`dynrag.training.feedback`); writes
``feedback/pairs.jsonl``, ``feedback/trainer/`` and ``feedback/checkpoint/``.
"""

from __future__ import annotations

from typing import Any

from dynrag.training.feedback import FeedbackLogs
from dynrag.training.rundir import is_main_process
from dynrag.training.stages.base import StageContext, StageSpec, latest_model_before
from dynrag.training.stages.dpo import DPOConfig, train_dpo

__all__ = ["STAGE", "FeedbackConfig"]


class FeedbackConfig(FeedbackLogs, DPOConfig):
    """The ``feedback:`` section: the logs to read (`FeedbackLogs`), then DPO on their pairs."""


def _run(ctx: StageContext) -> dict[str, Any]:
    settings: FeedbackConfig = ctx.settings
    pairs = settings.pairs(settings.records())
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
    input_files=lambda settings: settings.files("feedback"),
    start=latest_model_before("feedback"),
    trains=True,
)
