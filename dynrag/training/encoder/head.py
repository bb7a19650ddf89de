"""Training the encoder family's listwise head: behaviour cloning, then expected reward.

The scorer is frozen here; its outputs for every training question are computed once
(`analyse`) and the head trains on them in seconds to minutes.

- **BC** (`train_head_bc`): the refined scores by a listwise softmax over the gold passages plus
  BCE; the cut by cross-entropy to the best cut of the head's own current order (the prefix with
  the highest selection F1 against the gold passages; k = 0 when none is present).
- **Expected reward** (`train_head_reward`): the refine layers frozen (so the order, for which
  rewards were computed, stays fixed), the cut trained to maximise the exact expectation
  ``sum_k p(k) R(k)`` over the cuts whose reward is known (Choppy, AttnCut), with the mean reward
  of the question as baseline, plus an optional pull towards the BC target.
- **Calibration** (`fit_temperature`): one temperature on the cut logits, fitted on held-back
  questions, so that ``P(best cut <= k)`` reads as a probability.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from dynrag.core.encoder.head import Head, head_inputs, members
from dynrag.core.encoder.model import Analysis, EncoderReranker
from dynrag.data.examples import QAExample
from dynrag.training.encoder.settings import HeadTraining

__all__ = [
    "HeadTraining",
    "ListBatch",
    "analyse",
    "best_cut",
    "fit_temperature",
    "make_batch",
    "train_head_bc",
    "train_head_reward",
]

logger = logging.getLogger(__name__)


@dataclass
class ListBatch:
    """Head inputs of many questions, with their gold marks over the head's list."""

    features: torch.Tensor
    hidden: torch.Tensor
    mask: torch.Tensor
    gold: torch.Tensor
    """``[Q, M]`` 1 where the list's item is gold."""
    total_gold: torch.Tensor
    """``[Q]`` gold passages among all candidates (some may lie beyond the head's list)."""
    rows: torch.Tensor
    """``[Q]`` each question's row in the batch it was taken from (for per-row rewards)."""

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def take(self, index: torch.Tensor) -> ListBatch:
        """The questions at ``index``."""
        return ListBatch(
            self.features[index],
            self.hidden[index],
            self.mask[index],
            self.gold[index],
            self.total_gold[index],
            self.rows[index],
        )


def analyse(
    reranker: EncoderReranker, examples: Sequence[QAExample], batch_size: int = 16
) -> list[Analysis]:
    """The scorer's features of every example (in batches, with a progress bar)."""
    out: list[Analysis] = []
    for start in tqdm(range(0, len(examples), batch_size), desc="score", unit="batch"):
        chunk = examples[start : start + batch_size]
        out.extend(reranker.analyse_batch([e.question for e in chunk], [e.passages for e in chunk]))
    return out


def make_batch(
    analyses: Sequence[Analysis], examples: Sequence[QAExample], max_items: int
) -> ListBatch:
    """Stack analyses (questions without candidates must be left out) into a `ListBatch`."""
    feats, hidden, mask = head_inputs([(a.features, a.hidden, a.top) for a in analyses], max_items)
    gold = torch.zeros(mask.shape)
    total = torch.zeros(len(analyses))
    for q, (a, ex) in enumerate(zip(analyses, examples, strict=True)):
        marks = set(ex.gold or [])
        total[q] = len(marks)
        for j, pos in enumerate(a.top[:max_items]):
            gold[q, j] = float(pos in marks)
    return ListBatch(feats, hidden, mask, gold, total, torch.arange(len(analyses)))


def prefix_f1(sorted_gold: torch.Tensor, total_gold: torch.Tensor) -> torch.Tensor:
    """``[Q, M + 1]`` selection F1 of each prefix k = 0..M of lists whose gold marks are given."""
    q, m = sorted_gold.shape
    hits = torch.cat([torch.zeros(q, 1), sorted_gold.cumsum(1)], dim=1)
    k = torch.arange(m + 1, dtype=torch.float32).expand(q, m + 1)
    total = total_gold.unsqueeze(1)
    f1 = torch.where(k + total > 0, 2 * hits / (k + total).clamp(min=1e-9), torch.ones_like(k))
    return torch.where((k == 0) & (total > 0), torch.zeros_like(f1), f1)


def best_cut(
    sorted_gold: torch.Tensor, total_gold: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``[Q]`` the smallest k with the highest prefix F1 (k beyond a list's length excluded)."""
    f1 = prefix_f1(sorted_gold, total_gold)
    valid = torch.cat([torch.ones(mask.shape[0], 1, dtype=torch.bool), mask], dim=1)
    f1 = f1.masked_fill(~valid, -1.0)
    best = f1.max(dim=1, keepdim=True).values
    first = (f1 >= best - 1e-9).float().argmax(dim=1)
    return first


def _bc_loss(head: Head, batch: ListBatch) -> torch.Tensor:
    out = head(batch.features, batch.hidden, batch.mask)
    scores = out.scores
    safe = torch.where(batch.mask, scores, torch.zeros_like(scores))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(safe, batch.gold, reduction="none")
    bce = (bce * batch.mask).sum() / batch.mask.sum().clamp(min=1)
    has_gold = batch.gold.sum(1) > 0
    listwise = torch.tensor(0.0)
    if has_gold.any():
        target = batch.gold[has_gold] / batch.gold[has_gold].sum(1, keepdim=True)
        logp = torch.log_softmax(scores[has_gold], dim=1).masked_fill(~batch.mask[has_gold], 0.0)
        listwise = -(target * logp).sum(1).mean()
    sorted_gold = torch.gather(batch.gold, 1, out.order)
    target_k = best_cut(sorted_gold, batch.total_gold, torch.gather(batch.mask, 1, out.order))
    cut = torch.nn.functional.cross_entropy(out.cut_logits, target_k)
    return listwise + bce + cut


def _epochs(
    head: Head,
    batch: ListBatch,
    settings: HeadTraining,
    loss_fn: object,
    params: list[torch.nn.Parameter],
    desc: str,
    seed: int,
) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(
        params, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    steps = settings.epochs * math.ceil(len(batch) / settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.learning_rate, total_steps=max(steps, 1), pct_start=0.1
    )
    history: list[float] = []
    head.train()
    for _ in tqdm(range(settings.epochs), desc=desc, unit="epoch"):
        perm = torch.randperm(len(batch), generator=generator)
        total = 0.0
        for start in range(0, len(batch), settings.batch_size):
            part = batch.take(perm[start : start + settings.batch_size])
            loss = loss_fn(head, part)  # type: ignore[operator]
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(part)
        history.append(total / len(batch))
    head.eval()
    return history


def train_head_bc(
    reranker: EncoderReranker, batch: ListBatch, settings: HeadTraining, seed: int = 0
) -> list[float]:
    """Behaviour cloning of the whole head; returns the mean loss per epoch.

    The members of an ensemble are trained one after the other, each on its own order, member
    ``i`` with seed ``seed + i`` (dropout and shuffling); the loss is their mean.
    """
    histories = []
    heads = members(reranker.head)
    for i, head in enumerate(heads):
        torch.manual_seed(seed + i)
        params = list(head.parameters())
        desc = "head bc" if len(heads) == 1 else f"head bc {i + 1}/{len(heads)}"
        histories.append(_epochs(head, batch, settings, _bc_loss, params, desc, seed + i))
    return [sum(epoch) / len(epoch) for epoch in zip(*histories, strict=True)]


def cut_parameters(reranker: EncoderReranker) -> list[torch.nn.Parameter]:
    """The cut stage's parameters (the refine stage, and so the order, excluded).

    Those of every member of an ensemble: the expected reward is that of their mixture.
    """
    modules = [m for head in members(reranker.head) for m in head.cut_modules()]
    return [p for m in modules for p in m.parameters()]


def train_head_reward(
    reranker: EncoderReranker,
    batch: ListBatch,
    rewards: torch.Tensor,
    known: torch.Tensor,
    settings: HeadTraining,
    *,
    bc_weight: float = 0.0,
    seed: int = 0,
) -> list[float]:
    """Maximise the expected reward of the cut; the refine layers stay as they are.

    Args:
        reranker: Its head is trained in place.
        batch: The questions.
        rewards: ``[Q, M + 1]`` reward of each cut k (any value where not ``known``).
        known: ``[Q, M + 1]`` which cuts have a reward; the expectation runs over them.
        settings: Epochs, learning rate, batch size.
        bc_weight: Weight of the BC cut target (0: reward only).
        seed: Shuffling and dropout seed: the global RNG is seeded for the training (and put
            back after it), so the result does not depend on what ran before (which models
            were loaded, what the reward cache held).
    """
    for p in reranker.head.parameters():
        p.requires_grad_(False)
    params = cut_parameters(reranker)
    for p in params:
        p.requires_grad_(True)

    def loss_fn(head: Head, part: ListBatch) -> torch.Tensor:
        out = head(part.features, part.hidden, part.mask)
        r, ok = rewards[part.rows], known[part.rows]
        p = torch.softmax(out.cut_logits.masked_fill(~ok, float("-inf")), dim=1)
        baseline = (r * ok).sum(1, keepdim=True) / ok.sum(1, keepdim=True).clamp(min=1)
        gain = torch.where(ok, r - baseline, torch.zeros_like(r))
        loss = -(p * gain).sum(1).mean()
        if bc_weight:
            sorted_gold = torch.gather(part.gold, 1, out.order)
            mask = torch.gather(part.mask, 1, out.order)
            target = best_cut(sorted_gold, part.total_gold, mask)
            loss = loss + bc_weight * torch.nn.functional.cross_entropy(out.cut_logits, target)
        return loss

    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return _epochs(reranker.head, batch, settings, loss_fn, params, "head reward", seed)
    finally:
        for p in reranker.head.parameters():
            p.requires_grad_(True)


@torch.no_grad()
def fit_temperature(reranker: EncoderReranker, batch: ListBatch) -> float:
    """The temperature minimising the NLL of the best cut on ``batch`` (held-back questions)."""
    out = reranker.head(batch.features, batch.hidden, batch.mask)
    sorted_gold = torch.gather(batch.gold, 1, out.order)
    target = best_cut(sorted_gold, batch.total_gold, torch.gather(batch.mask, 1, out.order))
    best_t, best_nll = 1.0, math.inf
    for t in torch.exp(torch.linspace(math.log(0.25), math.log(4.0), 41)).tolist():
        nll = float(torch.nn.functional.cross_entropy(out.cut_logits / t, target))
        if nll < best_nll:
            best_t, best_nll = t, nll
    logger.info(
        "calibration: temperature %.3f (NLL %.4f on %d questions)", best_t, best_nll, len(batch)
    )
    return best_t
