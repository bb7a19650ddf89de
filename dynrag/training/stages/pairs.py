"""``pairs``: preference pairs, the best against the worst scored sample of each question.

Reads ``reward/rewards.jsonl``; writes ``pairs/pairs.jsonl``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynrag.training.config import PairsConfig
from dynrag.training.rundir import RunDir, read_jsonl
from dynrag.training.stages.base import StageContext, StageSpec, run_stage

if TYPE_CHECKING:
    from dynrag.training.rewards import ScoredSample

__all__ = ["STAGE", "best_worst_pair", "run_pairs"]

logger = logging.getLogger(__name__)


def best_worst_pair(
    samples: list[ScoredSample], margin: float
) -> tuple[ScoredSample, ScoredSample] | None:
    """The best and the worst sample of one question.

    None when they tie: a reward gap under ``margin``, or the same selection.
    """
    if len(samples) < 2:
        return None
    best = max(samples, key=lambda s: s.reward)
    worst = min(samples, key=lambda s: s.reward)
    if best.reward - worst.reward < margin or best.reward == worst.reward:
        return None
    if best.indices == worst.indices and worst.status != "fallback":
        return None
    return best, worst


def _run(ctx: StageContext) -> dict[str, Any]:
    from dynrag.training.rewards import ScoredSample

    settings: PairsConfig = ctx.settings
    out = ctx.dir / "pairs.jsonl"
    pairs, ties = [], 0
    for record in read_jsonl(ctx.upstream("reward/rewards.jsonl")):
        samples = [ScoredSample.model_validate(s) for s in record["samples"]]
        pair = best_worst_pair(samples, settings.margin)
        if pair is None:
            ties += 1
            continue
        best, worst = pair
        pairs.append(
            {
                "id": record["id"],
                "question": record["question"],
                "passages": record["passages"],
                "chosen": best.indices,
                "rejected": worst.indices,
                "rejected_text": worst.text if worst.status == "fallback" else None,
                "chosen_reward": best.reward,
                "rejected_reward": worst.reward,
            }
        )
    out.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    logger.info("pairs: %d pairs, %d questions dropped as ties", len(pairs), ties)
    return {"pairs": str(out), "count": len(pairs), "ties_dropped": ties}


STAGE = StageSpec(
    name="pairs",
    help="best vs worst sample per question -> preference pairs",
    run=_run,
    settings=PairsConfig,
    reads=("reward/rewards.jsonl",),
    output="pairs.jsonl",
    main_process_only=True,
)


def run_pairs(rd: RunDir, *, force: bool = False) -> Path:
    """Preference pairs: chosen = best, rejected = worst sample per question."""
    return run_stage(STAGE, rd, force=force)
