"""``encoder-bc``: behaviour cloning of the encoder family (scorer on gold labels, then the head).

The training questions are split once (seeded): the scorer trains on one part, and the head
learns on the other, on the scorer's outputs for questions it did not train on (so the head sees
scores as uncertain as they are at inference); a slice of that part is held back to fit the
calibration temperature.

Two options give the head more to learn from:

- ``cross_fit_folds: F`` (cross-fitting): F fold scorers, each trained on all but one F-th of
  the scorer's questions, score the F-th they did not see; those questions join the head's
  training set, so the head learns on nearly every training question instead of its own part.
  The shipped scorer is still the one trained on the whole scorer part.
- ``no_gold_fraction``: that fraction of the head's questions is added again with its gold
  passages removed, where the right cut is k = 0 ("nothing here answers it"); real retrieval
  often returns no answer passage, and labelled multi-hop sets rarely do.

Writes ``encoder-bc/scorer/`` (sentence-transformers checkpoints, for resuming),
``encoder-bc/scorer-fold<i>/`` with cross-fitting, ``encoder-bc/head.json`` (loss per epoch) and
``encoder-bc/checkpoint/``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dynrag.core.encoder.settings import FIELDS_NEW_AT_DEFAULT, EncoderSettings
from dynrag.data.examples import QAExample
from dynrag.training.encoder.settings import HeadTraining, ScorerTraining
from dynrag.training.stages.base import StageContext, StageSpec, write_json

__all__ = [
    "STAGE",
    "EncoderBCConfig",
    "fold_split",
    "split_questions",
    "without_gold",
]

logger = logging.getLogger(__name__)

_MODEL_OPTIONS_LISTED = ("similarities", "similarity_layer", "members")
"""The `FIELDS_NEW_AT_DEFAULT` that ``HASH_OMITS_DEFAULTS`` places by hand (the order is hashed)."""


def _model_options(*names: str) -> dict[str, Any]:
    """``model.<name>`` at the default `EncoderSettings` gives it, for each of ``names``."""
    return {f"model.{n}": EncoderSettings.model_fields[n].default for n in names}


class EncoderBCConfig(BaseModel):
    """The ``encoder-bc:`` section."""

    model_config = ConfigDict(extra="forbid")

    HASH_OMITS_DEFAULTS: ClassVar[dict[str, Any]] = {
        "cross_fit_folds": 0,
        "no_gold_fraction": 0.0,
        **_model_options("similarities", "similarity_layer"),
        "scorer.hard_negatives": 0,
        "scorer.negative_draws": 1,
        **_model_options("members"),
        # fields core adds to FIELDS_NEW_AT_DEFAULT later come last, at their defaults
        **_model_options(*sorted(FIELDS_NEW_AT_DEFAULT - set(_MODEL_OPTIONS_LISTED))),
    }
    """Options added after runs were made: at these values a stage completed before still is.

    In the order they appeared (`dynrag.training.compat.kept_option_prefixes`). The ``model.*``
    keys are `dynrag.core.encoder.settings.FIELDS_NEW_AT_DEFAULT` (the fields a saved model
    leaves out at their defaults), each at the default `EncoderSettings` gives it.
    """

    scorer: ScorerTraining = Field(default_factory=ScorerTraining)
    head: HeadTraining = Field(default_factory=HeadTraining)
    model: EncoderSettings = Field(default_factory=EncoderSettings)
    scorer_fraction: float = Field(
        default=0.7, gt=0, lt=1, description="Training questions the scorer trains on."
    )
    max_k: int | None = Field(
        default=None, ge=1, description="The model's default max_k (None: the largest gold count)."
    )
    cross_fit_folds: int = Field(
        default=0,
        ge=0,
        description=(
            "Fold scorers whose out-of-fold outputs on the scorer's questions also train the head "
            "(0 or 1: none; each fold costs about (F-1)/F of the scorer's training time)."
        ),
    )
    no_gold_fraction: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Head questions added again without their gold passages (target k = 0).",
    )

    @field_validator("cross_fit_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            msg = "cross_fit_folds: 1 fold has nothing to score; use 0 (off) or at least 2"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_pair_length(self) -> EncoderBCConfig:
        scorer = self.scorer
        if "max_length" in scorer.model_fields_set and scorer.max_length != self.model.max_length:
            msg = (
                f"scorer.max_length ({scorer.max_length}) is not read: the scorer trains at the "
                f"model's pair length, model.max_length ({self.model.max_length}); set that"
            )
            raise ValueError(msg)
        return self


def split_questions(
    count: int, scorer_fraction: float, calibration: float, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Positions of the scorer's, the head's and the calibration's questions (disjoint)."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    cut = round(count * scorer_fraction)
    scorer, rest = sorted(order[:cut]), order[cut:]
    held = round(len(rest) * calibration)
    return scorer, sorted(rest[held:]), sorted(rest[:held])


def fold_split(
    positions: Sequence[int], folds: int, seed: int
) -> list[tuple[list[int], list[int]]]:
    """``(train, held)`` positions of each fold: the held parts are disjoint and cover all.

    Raises:
        ValueError: fewer than 2 folds, or more folds than positions.
    """
    if not 2 <= folds <= len(positions):
        msg = f"cross-fitting needs 2 to {len(positions)} folds here, got {folds}"
        raise ValueError(msg)
    order = list(positions)
    random.Random(seed).shuffle(order)
    parts = [sorted(order[i::folds]) for i in range(folds)]
    return [
        (sorted(p for j, part in enumerate(parts) if j != i for p in part), parts[i])
        for i in range(folds)
    ]


def without_gold(examples: Sequence[QAExample], fraction: float, seed: int) -> list[QAExample]:
    """Copies of ``fraction`` of the examples that have gold passages, with those removed."""

    def gold_of(ex: QAExample) -> set[int]:
        return {g for g in ex.gold or [] if 0 <= g < len(ex.passages)}

    labelled = [ex for ex in examples if 0 < len(gold_of(ex)) < len(ex.passages)]
    count = round(len(labelled) * fraction)
    out = []
    for ex in random.Random(seed).sample(labelled, count):
        gold = gold_of(ex)
        passages = [p for i, p in enumerate(ex.passages) if i not in gold]
        update = {"id": f"{ex.id}#no-gold", "passages": passages, "gold": []}
        out.append(ex.model_copy(update=update))
    return out


def _run(ctx: StageContext) -> dict[str, Any]:
    from dynrag.training.encoder.head import analyse, fit_temperature, make_batch, train_head_bc
    from dynrag.training.encoder.plots import plot_history
    from dynrag.training.encoder.scorer import train_scorer
    from dynrag.training.questions import load_train_examples

    cfg = ctx.config
    settings: EncoderBCConfig = ctx.settings
    examples = [ex for ex in load_train_examples(cfg) if ex.passages]
    sc_idx, head_idx, cal_idx = split_questions(
        len(examples), settings.scorer_fraction, settings.head.calibration_fraction, cfg.seed
    )
    logger.info(
        "encoder-bc: %d questions: scorer %d, head %d, calibration %d",
        len(examples),
        len(sc_idx),
        len(head_idx),
        len(cal_idx),
    )
    # The scorer trains at the model's pair length (a copy: the config is hashed as written).
    scorer_settings = settings.scorer.model_copy(update={"max_length": settings.model.max_length})
    adapter = train_scorer(
        [examples[i] for i in sc_idx],
        ctx.dir / "scorer",
        scorer_settings,
        seed=cfg.seed,
        device=cfg.device,
    )
    from dynrag.core.encoder.model import EncoderReranker

    def over(scorer_adapter: Path) -> EncoderReranker:
        """A fresh head over a trained scorer."""
        return EncoderReranker.untrained(
            settings.model.model_copy(),
            base=settings.scorer.base_model,
            scorer_adapter=scorer_adapter,
            device=cfg.device,
            seed=cfg.seed,
        )

    reranker = over(adapter)  # seeded: the head starts the same every run
    rest = [examples[i] for i in [*head_idx, *cal_idx]]
    analyses = analyse(reranker, rest)
    m = settings.model.max_items
    fit_examples, fit_analyses = rest[: len(head_idx)], analyses[: len(head_idx)]
    held = make_batch(analyses[len(head_idx) :], rest[len(head_idx) :], m)
    if settings.no_gold_fraction:
        extra = without_gold(fit_examples, settings.no_gold_fraction, cfg.seed)
        fit_examples, fit_analyses = (
            [*fit_examples, *extra],
            [*fit_analyses, *analyse(reranker, extra)],
        )
    if settings.cross_fit_folds:
        for fold, (train_pos, held_pos) in enumerate(
            fold_split(sc_idx, settings.cross_fit_folds, cfg.seed)
        ):
            fold_adapter = train_scorer(
                [examples[i] for i in train_pos],
                ctx.dir / f"scorer-fold{fold}",
                scorer_settings,
                seed=cfg.seed + fold + 1,
                device=cfg.device,
            )
            scored = [examples[i] for i in held_pos]
            fit_examples = [*fit_examples, *scored]
            fit_analyses = [*fit_analyses, *analyse(over(fold_adapter), scored)]
    logger.info("encoder-bc: the head trains on %d questions", len(fit_examples))
    fit = make_batch(fit_analyses, fit_examples, m)
    history = train_head_bc(reranker, fit, settings.head, seed=cfg.seed)
    reranker.settings.temperature = fit_temperature(reranker, held) if len(held) else 1.0
    max_k = settings.max_k or max(len(ex.gold or []) for ex in examples)
    reranker.save(
        ctx.checkpoint,
        scorer_adapter=adapter,
        base_model=settings.scorer.base_model,
        max_k=max_k,
    )
    write_json(
        ctx.dir / "head.json", {"loss": history, "temperature": reranker.settings.temperature}
    )
    plot_history({"head loss (BC)": history}, ctx.dir / "training.png", "epoch")
    return {
        "checkpoint": str(ctx.checkpoint),
        "questions": len(examples),
        "scorer_questions": len(sc_idx),
        "head_questions": len(head_idx),
        "head_training_questions": len(fit_examples),
        "calibration_questions": len(cal_idx),
        "temperature": reranker.settings.temperature,
        "max_k": max_k,
    }


STAGE = StageSpec(
    name="encoder-bc",
    help="encoder family: train the cross-encoder on gold labels, then the listwise cut head",
    run=_run,
    settings=EncoderBCConfig,
    reads_data=True,
    trains=True,
    main_process_only=True,
)
