"""``encoder-rl``: the encoder family's cut trained on the generator's rewards (exact over k).

For each of the head's training questions (out-of-sample for the scorer), the generator answers
from every prefix k = 0..``max_k`` of the model's order, and the reward terms of the ``reward:``
section score each prefix (`dynrag.training.encoder.prefix_rewards`, cached per question and
prefix in ``encoder-rl/rewards.jsonl``). The cut is then trained to maximise ``sum_k p(k) R(k)``,
the order kept, and the calibration refitted on the held-back questions. Writes
``encoder-rl/checkpoint/``.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dynrag.training.encoder.settings import HeadTraining
from dynrag.training.stages.base import StageContext, StageSpec, latest_model_before, write_json

__all__ = ["STAGE", "EncoderRLConfig"]

logger = logging.getLogger(__name__)


class EncoderRLConfig(BaseModel):
    """The ``encoder-rl:`` section (rewards: the ``reward:`` section)."""

    model_config = ConfigDict(extra="forbid")

    max_k: int = Field(default=4, ge=1, description="Prefixes k = 0..max_k get a reward.")
    questions: int | None = Field(
        default=None, ge=1, description="At most this many of the head's questions (CPU time)."
    )
    head: HeadTraining = Field(default_factory=lambda: HeadTraining(epochs=40, learning_rate=1e-3))
    bc_weight: float = Field(
        default=0.0, ge=0, description="Weight of the BC cut target beside the expected reward."
    )


def _run(ctx: StageContext) -> dict[str, Any]:
    import torch

    from dynrag.training.encoder.head import analyse, fit_temperature, make_batch, train_head_reward
    from dynrag.training.encoder.plots import plot_history
    from dynrag.training.encoder.prefix_rewards import prefix_rewards
    from dynrag.training.encoder.start import load_start, save_over_start
    from dynrag.training.questions import load_train_examples
    from dynrag.training.stages.encoder_bc import split_questions

    cfg = ctx.config
    settings: EncoderRLConfig = ctx.settings
    bc = cfg.section("encoder-bc")
    start = ctx.start
    assert start is not None
    reranker = load_start("encoder-rl", start, cfg.device)
    examples = [ex for ex in load_train_examples(cfg) if ex.passages]
    _, head_idx, cal_idx = split_questions(
        len(examples), bc.scorer_fraction, bc.head.calibration_fraction, cfg.seed
    )
    chosen = [examples[i] for i in head_idx][: settings.questions]
    held = [examples[i] for i in cal_idx]
    analyses = analyse(reranker, chosen)
    m = reranker.settings.max_items
    batch = make_batch(analyses, chosen, m)
    rewards, known = prefix_rewards(
        chosen, analyses, cfg.reward, settings.max_k, ctx.dir / "rewards.jsonl", device=cfg.device
    )
    width = m + 1
    if rewards.shape[1] < width:  # every list shorter than the head's width
        pad = width - rewards.shape[1]
        rewards = torch.nn.functional.pad(rewards, (0, pad))
        known = torch.nn.functional.pad(known, (0, pad))
    before = _expected(reranker, batch, rewards, known)
    history = train_head_reward(
        reranker, batch, rewards, known, settings.head, bc_weight=settings.bc_weight, seed=cfg.seed
    )
    after = _expected(reranker, batch, rewards, known)
    if held:
        reranker.settings.temperature = 1.0
        reranker.settings.temperature = fit_temperature(
            reranker, make_batch(analyse(reranker, held), held, m)
        )
    save_over_start(reranker, ctx.checkpoint, start)
    summary = {
        "questions": len(chosen),
        "expected_reward_before": before,
        "expected_reward_after": after,
        "best_possible": float(rewards.masked_fill(~known, -1e9).max(1).values.mean()),
        "loss": history,
        "temperature": reranker.settings.temperature,
    }
    write_json(ctx.dir / "summary.json", summary)
    plot_history({"-E[reward] (train)": history}, ctx.dir / "training.png", "epoch")
    logger.info("encoder-rl: expected reward %.4f -> %.4f", before, after)
    return {"checkpoint": str(ctx.checkpoint), **{k: v for k, v in summary.items() if k != "loss"}}


def _expected(reranker: Any, batch: Any, rewards: Any, known: Any) -> float:
    """Mean over questions of the reward of the mode of the cut among known cuts."""
    import torch

    with torch.no_grad():
        out = reranker.head(batch.features, batch.hidden, batch.mask)
        logits = out.cut_logits.masked_fill(~known, float("-inf"))
        k = logits.argmax(1)
        return float(rewards.gather(1, k[:, None]).mean())


STAGE = StageSpec(
    name="encoder-rl",
    help="encoder family: train the cut on the generator's reward of every prefix (exact over k)",
    run=_run,
    settings=EncoderRLConfig,
    reads_data=True,
    reads_config=("reward", "encoder-bc"),
    start=latest_model_before("encoder-rl"),
    trains=True,
    main_process_only=True,
)
