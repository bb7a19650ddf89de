"""``bc``: behaviour cloning, SFT on expert selections (TRL ``SFTTrainer``).

The expert (`expert_selection`) is each question's gold passages ordered by a teacher
(`make_teacher`), or the teacher's own picks; ``drop_gold`` adds copies with one gold passage
taken out (`with_missing_gold`). Reads the training questions; writes ``bc/experts.json`` (each
question's expert selection), ``bc/trainer/`` (TRL checkpoints, for resuming) and
``bc/checkpoint/``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from dynrag.data.examples import QAExample
from dynrag.training.causal_lm.trainer_settings import TrainerSettings
from dynrag.training.config import SharedConfig
from dynrag.training.rundir import is_main_process
from dynrag.training.stages.base import StageContext, StageSpec, train_resuming, write_json

__all__ = [
    "STAGE",
    "BCConfig",
    "Teacher",
    "expert_selection",
    "make_teacher",
    "with_missing_gold",
]

logger = logging.getLogger(__name__)

Teacher = Callable[[QAExample], list[float]]
"""Scores each candidate of an example (higher: more useful)."""


class BCConfig(TrainerSettings):
    """Behaviour cloning: supervised fine-tuning on expert selections (TRL ``SFTTrainer``)."""

    trainer_class: ClassVar[str] = "trl.SFTConfig"

    expert: Literal["gold", "teacher"] = Field(
        default="gold",
        description=(
            "'gold': the labelled supporting passages, ordered by the teacher (questions without "
            "labels fall back to the teacher); 'teacher': the teacher's passages over the cutoff."
        ),
    )
    teacher: str = Field(
        default="minilm",
        description=(
            "Orders (and, without labels, picks) passages: 'minilm' (cosine), 'bm25', "
            "'retrieval' (input order) or 'reranker:<model>' (any dynrag reranker's selection)."
        ),
    )
    teacher_cutoff: float = Field(default=0.45, description="Teacher score a passage must reach.")
    teacher_max_k: int = Field(default=4, ge=1, description="At most this many teacher picks.")
    drop_gold: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Share of the questions with two or more gold passages that are also trained on with"
            " one gold passage taken out of the candidates (target: the gold left). Real"
            " retrieval often misses a supporting passage; these pairs teach that k follows what"
            " the candidates hold, not a fixed habit."
        ),
    )


def with_missing_gold(examples: Sequence[QAExample], share: float, seed: int) -> list[QAExample]:
    """Copies of some examples with one gold passage taken out of the candidates.

    ``share`` of the examples with two or more gold passages (chosen with ``seed``) get a copy
    (id suffixed ``#missing-gold``) without one of their gold passages, also chosen at random;
    its gold list is the rest. Paired with the original, the same question then has targets of
    different k, which only the candidates explain.
    """
    rng = random.Random(seed)
    eligible = [(ex, ex.gold) for ex in examples if ex.gold is not None and len(ex.gold) >= 2]
    out: list[QAExample] = []
    for ex, gold in rng.sample(eligible, round(share * len(eligible))):
        gone = rng.choice(gold)
        keep = [i for i in range(len(ex.passages)) if i != gone]
        position = {old: new for new, old in enumerate(keep)}
        update = {
            "id": f"{ex.id}#missing-gold",
            "passages": [ex.passages[i] for i in keep],
            "gold": [position[g] for g in gold if g != gone],
        }
        out.append(ex.model_copy(update=update))
    return out


def make_teacher(name: str, config: SharedConfig) -> Teacher | None:
    """A teacher scorer by name.

    ``minilm`` (cosine), ``bm25``, ``retrieval`` (None: input order) or ``reranker:<model>``
    (a dynrag reranker: its picks score by rank, the rest 0).

    Raises:
        ValueError: an unknown teacher.
    """
    if name == "retrieval":
        return None
    if name == "minilm":
        from dynrag.eval.selectors import first_stage_minilm

        scored = first_stage_minilm()
        return lambda ex: scored(ex)[0]
    if name == "bm25":
        from dynrag.eval.selectors import first_stage_bm25

        scored = first_stage_bm25()
        return lambda ex: scored(ex)[0]
    if name.startswith("reranker:"):
        from dynrag.core.interface import Reranker

        reranker = Reranker.from_pretrained(name.split(":", 1)[1], device=config.device)

        def score(ex: QAExample) -> list[float]:
            sel = reranker.rerank(ex.question, ex.passages)
            scores = [0.0] * len(ex.passages)
            for rank, i in enumerate(sel.indices):
                scores[i] = 1.0 / (rank + 1)
            return scores

        return score
    msg = f"unknown teacher {name!r}; use minilm, bm25, retrieval or reranker:<model>"
    raise ValueError(msg)


def expert_selection(example: QAExample, cfg: BCConfig, teacher: Teacher | None) -> list[int]:
    """The selection behaviour cloning imitates: 0-based positions, best first.

    ``gold`` expert: the labelled passages ordered by teacher score (an empty gold list means
    no passage is needed: the target is the none text). Unlabelled examples, and the
    ``teacher`` expert, take the teacher's passages scoring at least ``teacher_cutoff``, at most
    ``teacher_max_k``. Targets are never padded with passages known to be irrelevant.

    Raises:
        ValueError: the teacher expert without a teacher, or an unlabelled example without one.
    """
    scores = teacher(example) if teacher is not None else None
    if cfg.expert == "gold" and example.gold is not None:
        if scores is None:
            return sorted(example.gold)
        return sorted(example.gold, key=lambda i: (-scores[i], i))
    if scores is None:
        msg = (
            f"example {example.id} has no gold passages and teacher 'retrieval' gives no scores; "
            "use teacher minilm, bm25 or reranker:<model>"
        )
        raise ValueError(msg)
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [i for i in order if scores[i] >= cfg.teacher_cutoff][: cfg.teacher_max_k]


def _run(ctx: StageContext) -> dict[str, Any]:
    from datasets import Dataset
    from tqdm.auto import tqdm
    from trl import SFTTrainer

    from dynrag.training.causal_lm.data import PromptBuilder, fit_length
    from dynrag.training.causal_lm.models import load_tokenizer, load_trainable_model
    from dynrag.training.questions import load_train_examples
    from dynrag.training.stages.trl_support import finish_training, trl_config

    cfg = ctx.config
    bc: BCConfig = ctx.settings
    start = ctx.start or cfg.model
    examples = load_train_examples(cfg)
    if bc.drop_gold > 0:
        extra = with_missing_gold(examples, bc.drop_gold, cfg.seed)
        logger.info("bc: %d copies with one gold passage taken out", len(extra))
        examples = examples + extra
    tokenizer = load_tokenizer(start)
    builder = PromptBuilder(tokenizer, cfg.prompt_format, cfg.max_passage_tokens)
    teacher = make_teacher(bc.teacher, cfg)
    rows, experts = [], []
    for ex in tqdm(examples, desc="bc: expert selections", disable=not is_main_process()):
        selection = expert_selection(ex, bc, teacher)
        experts.append({"id": ex.id, "indices": selection, "gold": ex.gold})
        rows.append(
            {
                "prompt": builder.prompt(ex.question, ex.passages),
                "completion": builder.completion(selection),
            }
        )
    if is_main_process():
        write_json(ctx.dir / "experts.json", experts)
    rows, max_length = fit_length(rows, builder, bc.max_length, ["completion"])
    mean_k = sum(len(e["indices"]) for e in experts) / len(experts)
    logger.info("bc: %d examples, expert mean k %.2f, max length %d", len(rows), mean_k, max_length)
    model, peft_config = load_trainable_model(start, cfg, bc)
    args = trl_config(
        bc,
        cfg,
        ctx.dir / "trainer",
        max_length=max_length,
        completion_only_loss=True,
        packing=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    train_resuming(trainer, ctx.dir / "trainer")
    return finish_training(
        ctx, trainer, tokenizer, {"examples": len(rows), "expert_mean_k": mean_k}
    )


STAGE = StageSpec(
    name="bc",
    help="behaviour cloning: SFT on expert selections",
    run=_run,
    settings=BCConfig,
    reads_data=True,
    start=lambda rd: rd.config.model,
    trains=True,
)
