"""``reward``: each sampled selection gets its reward terms (and an answer, if a term reads one).

Its settings are the ``reward:`` section, `dynrag.training.rewards.settings.RewardConfig` (the
scorer's, which ``grpo`` and ``encoder-rl`` read too). Reads ``sample/samples.jsonl``; writes
``reward/rewards.jsonl`` (the same records, every sample with its reward terms), appended question
by question (an interrupted run resumes).
"""

from __future__ import annotations

from typing import Any

from dynrag.data.jsonl import append_jsonl, read_jsonl
from dynrag.training.rewards.settings import RewardConfig
from dynrag.training.stages.base import StageContext, StageSpec, done_ids

__all__ = ["STAGE", "RewardConfig"]


def _run(ctx: StageContext) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from dynrag.core.types import Passage
    from dynrag.training.rewards.engine import RewardScorer

    settings: RewardConfig = ctx.settings
    out = ctx.dir / "rewards.jsonl"
    records = list(read_jsonl(ctx.upstream("sample/samples.jsonl")))
    done = done_ids(out)
    scorer = RewardScorer(settings, device=ctx.config.device)
    for record in tqdm(records, desc="reward", initial=0):
        if record["id"] in done:
            continue
        scored = scorer.score(
            record["id"],
            record["question"],
            [Passage.model_validate(p) for p in record["passages"]],
            record["answers"],
            record["samples"],
            record.get("gold"),
        )
        append_jsonl(out, [{**record, "samples": [s.model_dump() for s in scored]}])
    rewards = [s["reward"] for r in read_jsonl(out) for s in r["samples"]]
    return {"rewards": str(out), "mean_reward": sum(rewards) / max(len(rewards), 1)}


STAGE = StageSpec(
    name="reward",
    help="let the generator answer from each sample and score it",
    run=_run,
    settings=RewardConfig,
    reads=("sample/samples.jsonl",),
    output="rewards.jsonl",
    main_process_only=True,
)
