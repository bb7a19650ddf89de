"""``pairs``: preference pairs, the best against the worst scored sample of each question.

Reads ``reward/rewards.jsonl``; writes ``pairs/pairs.jsonl``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import Field

from dynrag.data.jsonl import read_jsonl
from dynrag.training.config import StrictSettings
from dynrag.training.rewards.engine import ScoredSample
from dynrag.training.stages.base import StageContext, StageSpec

__all__ = ["STAGE", "PairsConfig", "best_worst_pair"]

logger = logging.getLogger(__name__)


class PairsConfig(StrictSettings):
    """Preference pairs from scored samples: best against worst per question."""

    margin: float = Field(default=0.02, ge=0.0, description="Smallest reward gap kept.")


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
