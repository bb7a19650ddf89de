"""``grpo``: online RL with TRL's ``GRPOTrainer``, rewarded by the generator's answers.

Reads the training questions and the ``reward`` section (its scorer); writes
``grpo/steps.jsonl`` (mean reward and k per reward call, for the plot), ``grpo/trainer/`` and
``grpo/checkpoint/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from dynrag.data.jsonl import append_jsonl
from dynrag.training.causal_lm.trainer_settings import TrainerSettings
from dynrag.training.rewards.settings import RewardConfig
from dynrag.training.rundir import is_main_process
from dynrag.training.stages.base import (
    StageContext,
    StageSpec,
    latest_model_before,
    train_resuming,
)

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer

__all__ = ["STAGE", "GRPOConfig", "SelectionReward"]


class GRPOConfig(TrainerSettings):
    """Online RL with TRL ``GRPOTrainer``; the reward function calls the generator."""

    trainer_class: ClassVar[str] = "trl.GRPOConfig"

    learning_rate: float = Field(default=1e-5, gt=0.0)
    num_generations: int = Field(default=4, ge=2, description="Samples per question per step.")
    temperature: float = Field(default=0.7, gt=0.0)
    beta: float = Field(default=0.0, ge=0.0, description="KL coefficient (0: no reference).")
    limit: int | None = Field(default=None, ge=1, description="At most this many questions.")
    use_vllm: bool = Field(default=False, description="Generate with vLLM (GPU).")


class SelectionReward:
    """A TRL reward function: parse each completion, let the generator answer, score it.

    Also logs the mean k of each batch (``mean_k``) and appends reward and k per step to
    ``grpo/steps.jsonl`` for the training plot.
    """

    __name__ = "dynrag_reward"

    def __init__(self, scorer: RewardScorer, log_path: Path | None = None) -> None:
        """Score with ``scorer``; write per-step statistics to ``log_path``."""
        self.scorer = scorer
        self.log_path = log_path

    def __call__(
        self,
        prompts: list[str],
        completions: list[str],
        *,
        id: list[str],
        question: list[str],
        answers: list[list[str]],
        passages: list[str],
        gold: list[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        trainer_state: Any = None,
        **_: Any,
    ) -> list[float]:
        """One reward per completion (TRL passes dataset columns as lists)."""
        from dynrag.core.generative.parsing import parse_selection
        from dynrag.core.types import Passage

        rewards, ks = [], []
        for i, text in enumerate(completions):
            items = [Passage.model_validate(p) for p in json.loads(passages[i])]
            parsed = parse_selection(text, len(items))
            sample = {"text": text, "indices": list(parsed.indices), "status": parsed.status.value}
            labels = None if gold is None else json.loads(gold[i])
            scored = self.scorer.score(
                id[i], question[i], items, answers[i], [sample], gold_indices=labels
            )[0]
            rewards.append(scored.reward)
            ks.append(len(parsed.indices))
        mean_k = sum(ks) / len(ks)
        if log_metric is not None:
            log_metric("mean_k", mean_k)
        if self.log_path is not None and is_main_process():
            step = getattr(trainer_state, "global_step", None)
            record = {"step": step, "reward": sum(rewards) / len(rewards), "mean_k": mean_k}
            append_jsonl(self.log_path, [record])
        return rewards


def _run(ctx: StageContext) -> dict[str, Any]:
    from datasets import Dataset
    from trl import GRPOTrainer

    from dynrag.core.generative.backends.base import GrammarSpec
    from dynrag.core.generative.constrained import selection_regex
    from dynrag.core.generative.prompts import get_prompt_format
    from dynrag.training.causal_lm.data import PromptBuilder
    from dynrag.training.causal_lm.models import load_tokenizer, load_trainable_model
    from dynrag.training.questions import load_train_examples
    from dynrag.training.rewards.engine import RewardScorer
    from dynrag.training.stages.trl_support import finish_training, trl_config

    cfg = ctx.config
    settings: GRPOConfig = ctx.settings
    start = ctx.start or cfg.model
    examples = load_train_examples(cfg, limit=settings.limit)
    tokenizer = load_tokenizer(start)
    builder = PromptBuilder(tokenizer, cfg.prompt_format, cfg.max_passage_tokens)
    rows = [
        {
            "prompt": builder.prompt(ex.question, ex.passages),
            "id": ex.id,
            "question": ex.question,
            "answers": ex.answers,
            "passages": json.dumps([p.model_dump() for p in ex.passages]),
            "gold": json.dumps(ex.gold),  # JSON: None (unlabelled) and [] both survive
        }
        for ex in examples
    ]
    longest = max(len(ex.passages) for ex in examples)
    model, peft_config = load_trainable_model(start, cfg, settings)
    grpo_kw: dict[str, Any] = {}
    if settings.use_vllm:
        fmt = get_prompt_format(cfg.prompt_format)
        grpo_kw.update(
            use_vllm=True, vllm_structured_outputs_regex=selection_regex(GrammarSpec(fmt, longest))
        )
    args = trl_config(
        settings,
        cfg,
        ctx.dir / "trainer",
        per_device_train_batch_size=settings.batch_size * settings.num_generations,
        num_generations=settings.num_generations,
        max_completion_length=8 + 5 * longest,
        temperature=settings.temperature,
        beta=settings.beta,
        **grpo_kw,
    )
    scorer = RewardScorer(cfg.section("reward", RewardConfig), device=cfg.device)
    reward = SelectionReward(scorer, ctx.dir / "steps.jsonl")
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,  # type: ignore[arg-type]  # a callable object, as TRL documents
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    train_resuming(trainer, ctx.dir / "trainer")
    return finish_training(ctx, trainer, tokenizer, {"questions": len(rows)})


STAGE = StageSpec(
    name="grpo",
    help="online RL with GRPO, rewarded by the generator",
    run=_run,
    settings=GRPOConfig,
    reads_data=True,
    reads_config=("reward",),
    start=latest_model_before("grpo"),
    trains=True,
)
