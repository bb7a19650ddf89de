"""The encoder family's training arithmetic, worked by hand, and the head learning a cut."""

from __future__ import annotations

import pytest
import torch

from dynrag.core.encoder.head import CutHead, HeadEnsemble
from dynrag.eval.selectors import largest_gap_k
from dynrag.training.encoder.head import (
    HeadTraining,
    ListBatch,
    best_cut,
    fit_temperature,
    prefix_f1,
    train_head_bc,
    train_head_reward,
)
from dynrag.training.stages.encoder_bc import split_questions


def test_prefix_f1_by_hand() -> None:
    # order: gold, distractor, gold; 2 gold in all -> F1 of k=0..3: 0, 2/3, 1/2, 4/5
    f1 = prefix_f1(torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([2.0]))
    assert f1[0].tolist() == pytest.approx([0.0, 2 / 3, 0.5, 0.8])
    # nothing gold: only the empty selection scores 1
    none = prefix_f1(torch.tensor([[0.0, 0.0]]), torch.tensor([0.0]))
    assert none[0].tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_best_cut_prefers_the_smallest_best_prefix_within_the_list() -> None:
    gold = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    total = torch.tensor([2.0, 0.0, 3.0])  # the third list misses one gold passage
    mask = torch.tensor([[True, True, True, False], [True, True, False, False], [True] * 4])
    assert best_cut(gold, total, mask).tolist() == [3, 0, 2]


def test_largest_gap() -> None:
    assert largest_gap_k([5.0, 4.8, 1.0, 0.9]) == 2
    assert largest_gap_k([3.0, 0.0, -0.1]) == 1
    assert largest_gap_k([1.0]) == 1
    assert largest_gap_k([]) == 0


def test_split_is_disjoint_seeded_and_complete() -> None:
    a = split_questions(100, 0.6, 0.2, seed=3)
    assert a == split_questions(100, 0.6, 0.2, seed=3)
    scorer, head, cal = a
    assert (len(scorer), len(head), len(cal)) == (60, 32, 8)
    assert sorted(scorer + head + cal) == list(range(100))


def _lists(n: int, seed: int) -> ListBatch:
    """Lists of 6 whose gold passages have the highest first feature; k* varies 0..3."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, 6, 16, generator=g) * 0.1
    gold = torch.zeros(n, 6)
    for q in range(n):
        count = q % 4
        gold[q, :count] = 1.0
        feats[q, :count, 0] = 3.0
        feats[q, :, 4] = count  # a feature that tells the count
    perm = torch.argsort(torch.rand(n, 6, generator=g), dim=1)
    feats = torch.gather(feats, 1, perm[..., None].expand_as(feats))
    gold = torch.gather(gold, 1, perm)
    return ListBatch(
        feats,
        torch.zeros(n, 6, 8),
        torch.ones(n, 6, dtype=torch.bool),
        gold,
        gold.sum(1),
        torch.arange(n),
    )


class _Holder:
    def __init__(self, members: int = 1) -> None:
        torch.manual_seed(0)
        heads = [CutHead(16, 8, max_items=6, d_model=32, layers=1) for _ in range(members)]
        self.head: CutHead | HeadEnsemble = heads[0] if members == 1 else HeadEnsemble(heads)


def test_bc_learns_the_cut_and_calibration_fits() -> None:
    holder = _Holder()
    batch = _lists(96, 0)
    losses = train_head_bc(holder, batch, HeadTraining(epochs=60, learning_rate=3e-3), seed=0)  # type: ignore[arg-type]
    assert losses[-1] < losses[0] * 0.5
    test = _lists(48, 1)
    out = holder.head(test.features, test.hidden, test.mask)
    assert (out.cut_logits.argmax(1) == test.gold.sum(1).long()).float().mean() > 0.9
    t = fit_temperature(holder, test)  # type: ignore[arg-type]
    assert 0.25 <= t <= 4.0


def test_expected_reward_moves_the_cut_towards_the_rewarded_k() -> None:
    holder = _Holder()
    batch = _lists(64, 2)
    rewards = torch.zeros(64, 7)
    rewards[:, 1] = 1.0  # whatever the gold, one passage is rewarded
    known = torch.ones(64, 7, dtype=torch.bool)
    train_head_reward(holder, batch, rewards, known, HeadTraining(epochs=40, learning_rate=3e-3))  # type: ignore[arg-type]
    out = holder.head(batch.features, batch.hidden, batch.mask)
    assert (out.cut_logits.argmax(1) == 1).float().mean() > 0.9


def test_an_ensemble_trains_each_member_as_a_single_head_of_its_seed() -> None:
    """Member 0 of an ensemble is bit for bit the single head of the same seed; the mixture
    learns the cut, and the expected reward trains every member's cut stage."""
    batch = _lists(96, 0)
    settings = HeadTraining(epochs=30, learning_rate=3e-3)
    single, ensemble = _Holder(), _Holder(members=3)
    train_head_bc(single, batch, settings, seed=0)  # type: ignore[arg-type]
    losses = train_head_bc(ensemble, batch, settings, seed=0)  # type: ignore[arg-type]
    assert len(losses) == 30
    assert isinstance(ensemble.head, HeadEnsemble)
    members = ensemble.head.heads()
    for a, b in zip(
        members[0].state_dict().values(), single.head.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert not torch.equal(members[1].embed.weight, members[2].embed.weight)
    test = _lists(48, 1)
    out = ensemble.head(test.features, test.hidden, test.mask)
    assert (out.cut_logits.argmax(1) == test.gold.sum(1).long()).float().mean() > 0.9
    # lists of different lengths: the cuts beyond a list are -inf in every member, and the
    # mixture's gradient must stay finite there
    batch.mask[::2, -1] = False
    batch.gold[::2, -1] = 0.0
    before = [h.cut_out.weight.clone() for h in members]
    refine_before = [h.refine_out.weight.clone() for h in members]
    rewards = torch.zeros(96, 7)
    rewards[:, 1] = 1.0
    known = torch.ones(96, 7, dtype=torch.bool)
    train_head_reward(ensemble, batch, rewards, known, HeadTraining(epochs=20, learning_rate=3e-3))  # type: ignore[arg-type]
    assert all(not torch.equal(h.cut_out.weight, w) for h, w in zip(members, before, strict=True))
    assert all(
        torch.equal(h.refine_out.weight, w) for h, w in zip(members, refine_before, strict=True)
    )
    assert all(torch.isfinite(p).all() for p in ensemble.head.parameters())
    out = ensemble.head(batch.features, batch.hidden, batch.mask)
    assert (out.cut_logits.argmax(1) == 1).float().mean() > 0.9


def test_reward_training_does_not_depend_on_what_ran_before() -> None:
    # Issue 36 item 14: encoder-rl gave different heads from the same inputs: its dropout drew
    # from the global RNG, whose state depended on what had run before (model loads, the cache)
    batch = _lists(32, 3)
    rewards = torch.rand(32, 7, generator=torch.Generator().manual_seed(1))
    known = torch.ones(32, 7, dtype=torch.bool)
    heads = []
    for before in (0, 12345):
        holder = _Holder()
        torch.manual_seed(before)  # a different global RNG state each time
        train_head_reward(holder, batch, rewards, known, HeadTraining(epochs=3), seed=7)  # type: ignore[arg-type]
        heads.append(holder.head.state_dict())
    for name, tensor in heads[0].items():
        assert torch.equal(tensor, heads[1][name]), name
