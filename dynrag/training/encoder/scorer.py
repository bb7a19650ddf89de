"""Behaviour cloning of the encoder family's scorer: a MiniLM cross-encoder on gold labels.

sentence-transformers' `CrossEncoder` and `CrossEncoderTrainer` (the transformers Trainer:
checkpoints, resuming, logging and multi-GPU come with it), a LoRA adapter over the base
all-MiniLM-L6-v2 (so the shipped model is small), and one loss that does both things the scorer
is asked: a listwise softmax per question (the gold passages against their own distractors,
ListNet with a one-hot-per-gold target) plus pointwise binary cross-entropy (so that a logit
means the same across questions, which a threshold and the cut head rely on).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dynrag.core.constants import base_minilm_path
from dynrag.core.encoder.scorer import pair_text
from dynrag.data.examples import QAExample
from dynrag.training.encoder.settings import ScorerTraining

__all__ = ["ListwiseBCELoss", "ScorerTraining", "scorer_dataset", "train_scorer"]

logger = logging.getLogger(__name__)

_LORA_TARGETS = (
    r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)"
)


class ListwiseBCELoss(nn.Module):
    """Listwise softmax cross-entropy per question plus pointwise BCE, on one set of logits.

    Inputs as sentence-transformers' listwise losses take them: ``(queries, docs_lists)`` and a
    list of label tensors (1 = gold). A question without a gold passage adds only BCE.
    """

    def __init__(self, model: Any, pointwise_weight: float = 1.0) -> None:
        """Wrap a one-label `CrossEncoder`."""
        super().__init__()
        self.model = model
        self.pointwise_weight = pointwise_weight

    def forward(self, inputs: list[Any], labels: list[torch.Tensor], **_: Any) -> torch.Tensor:
        """The mean loss over the batch's questions."""
        from sentence_transformers.util import batch_to_device

        queries, docs_lists = inputs
        pairs = [(q, d) for q, docs in zip(queries, docs_lists, strict=True) for d in docs]
        tokens = batch_to_device(self.model.preprocess(pairs), self.model.device)
        logits = self.model(tokens)["scores"].view(-1).float()
        losses = []
        start = 0
        for docs, label in zip(docs_lists, labels, strict=True):
            n = len(docs)
            z = logits[start : start + n]
            y = label.to(z.device).float()
            start += n
            loss = self.pointwise_weight * nn.functional.binary_cross_entropy_with_logits(z, y)
            if y.sum() > 0:
                target = y / y.sum()
                loss = loss - (target * torch.log_softmax(z, dim=0)).sum()
            losses.append(loss)
        return torch.stack(losses).mean()

    def get_config_dict(self) -> dict[str, float]:
        """What sentence-transformers records of the loss in a model card."""
        return {"pointwise_weight": self.pointwise_weight}


def scorer_dataset(
    examples: Sequence[QAExample],
    negatives: int | None = None,
    seed: int = 0,
    *,
    hard_negatives: int = 0,
    draws: int = 1,
) -> Any:
    """A `datasets.Dataset` of ``query``, ``docs`` (``"title. text"``) and 0/1 ``labels``.

    Every gold passage is kept, with at most ``negatives`` distractors per question (None: all),
    in the candidates' order: the ``hard_negatives`` that BM25 ranks highest for the question,
    and the rest drawn at random (seeded). Each question appears ``draws`` times, each copy with
    its own random distractors.
    """
    from datasets import Dataset

    from dynrag.core.presort import bm25_scores

    rng = random.Random(seed)
    rows: dict[str, list[Any]] = {"query": [], "docs": [], "labels": []}
    for ex in examples:
        gold = set(ex.gold or [])
        texts = [pair_text(p.title, p.text) for p in ex.passages]
        others = [i for i in range(len(ex.passages)) if i not in gold]
        hard: list[int] = []
        if negatives is not None and hard_negatives and len(others) > negatives:
            bm25 = bm25_scores(ex.question, texts)
            ranked = sorted(others, key=lambda i: (-bm25[i], i))
            hard = ranked[: min(hard_negatives, negatives)]
        rest = [i for i in others if i not in hard]
        for _ in range(draws):
            drawn = rest
            if negatives is not None and len(hard) + len(rest) > negatives:
                drawn = rng.sample(rest, negatives - len(hard))
            keep = sorted([*gold, *hard, *drawn])
            rows["query"].append(ex.question)
            rows["docs"].append([texts[i] for i in keep])
            rows["labels"].append([int(i in gold) for i in keep])
    return Dataset.from_dict(rows)


def _warmup(ratio: float) -> dict[str, Any]:
    """The warmup argument: a float ``warmup_steps`` is a ratio from transformers 5 on."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"warmup_steps": ratio}
    return {"warmup_ratio": ratio}


def train_scorer(
    examples: Sequence[QAExample],
    output_dir: Path,
    settings: ScorerTraining,
    *,
    seed: int = 0,
    device: str | None = None,
) -> Path:
    """Train the scorer's LoRA adapter; returns its folder (``output_dir / "adapter"``).

    Resumes from the newest complete checkpoint in ``output_dir`` when there is one.
    """
    from peft import LoraConfig, get_peft_model
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from transformers import set_seed

    from dynrag.training.rundir import last_complete_checkpoint

    base = base_minilm_path(settings.base_model)
    # The classifier and the LoRA matrices are drawn at construction, before the trainer seeds
    # anything: seed here, so that they do not depend on what ran earlier in the process.
    set_seed(seed)
    model = CrossEncoder(
        str(base),
        num_labels=1,
        max_length=settings.max_length,
        activation_fn=nn.Identity(),
        device=device or "cpu",
    )
    lora = LoraConfig(
        task_type="SEQ_CLS",
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=0.05,
        target_modules=_LORA_TARGETS,
        modules_to_save=["classifier", "pooler"],
    )
    # peft directly on the transformers model inside the CrossEncoder's Transformer module
    # (CrossEncoder.add_adapter needs peft >= 0.22, which is not released yet).
    model[0].model = get_peft_model(model[0].model, lora)
    args = CrossEncoderTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.queries_per_batch,
        learning_rate=settings.learning_rate,
        **_warmup(settings.warmup_ratio),
        save_steps=settings.save_steps,
        save_total_limit=2,
        logging_steps=10,
        seed=seed,
        report_to="none",
        use_cpu=(device or "cpu") == "cpu",
        **settings.trainer,
    )

    class _Trainer(CrossEncoderTrainer):
        """Resumes the LoRA adapter.

        sentence-transformers would rebuild a model from the checkpoint folder, which holds
        only the adapter.
        """

        def _load_from_checkpoint(self, checkpoint_path: str, *_: Any) -> None:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            weights = load_file(str(Path(checkpoint_path) / "adapter_model.safetensors"))
            set_peft_model_state_dict(model[0].model, weights)

    trainer = _Trainer(
        model=model,
        args=args,
        train_dataset=scorer_dataset(
            examples,
            settings.negatives,
            seed,
            hard_negatives=settings.hard_negatives,
            draws=settings.negative_draws,
        ),
        loss=ListwiseBCELoss(model, settings.pointwise_weight),
    )
    checkpoint = last_complete_checkpoint(output_dir)
    if checkpoint is not None:
        logger.info("resuming the scorer from %s", checkpoint)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    adapter = output_dir / "adapter"
    model[0].model.save_pretrained(adapter)
    return adapter
