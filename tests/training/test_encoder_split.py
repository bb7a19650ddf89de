"""How encoder-bc divides its questions: the scorer/head split, cross-fitting folds, and the
gold-free copies that teach the cut k = 0."""

from __future__ import annotations

import pytest

from dynrag.core.types import Passage
from dynrag.data.examples import QAExample
from dynrag.training.stages.encoder_bc import (
    EncoderBCConfig,
    fold_split,
    split_questions,
    without_gold,
)


def test_splits_are_disjoint_and_cover_every_question() -> None:
    scorer, head, cal = split_questions(100, 0.6, 0.2, seed=0)
    assert (len(scorer), len(head), len(cal)) == (60, 32, 8)
    assert sorted([*scorer, *head, *cal]) == list(range(100))
    assert split_questions(100, 0.6, 0.2, seed=0) == (scorer, head, cal)  # seeded


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_each_fold_scores_what_its_scorer_did_not_train_on(folds: int) -> None:
    positions = list(range(10, 47))
    parts = fold_split(positions, folds, seed=1)
    assert len(parts) == folds
    held_all = [p for _, held in parts for p in held]
    assert sorted(held_all) == positions  # every question is scored once, out of fold
    for train, held in parts:
        assert not set(train) & set(held)
        assert sorted([*train, *held]) == positions


def test_gold_free_copies_target_no_passage() -> None:
    passages = [Passage(title=f"t{i}", text=f"passage {i}") for i in range(4)]
    examples = [
        QAExample(id=f"q{i}", question="q?", answers=["a"], passages=passages, gold=[0, 2])
        for i in range(10)
    ]
    examples.append(QAExample(id="none", question="q?", answers=["a"], passages=passages, gold=[]))
    copies = without_gold(examples, 0.3, seed=0)
    assert len(copies) == 3  # 30% of the 10 labelled questions
    for copy in copies:
        assert copy.gold == []
        assert [p.title for p in copy.passages] == ["t1", "t3"]
    assert examples[0].gold == [0, 2]  # the originals are untouched
    assert without_gold(examples, 0.0, seed=0) == []


def test_fold_counts_beyond_the_questions_are_refused() -> None:
    with pytest.raises(ValueError, match="needs 2 to 3 folds"):
        fold_split([1, 2, 3], 4, seed=0)


def test_out_of_range_gold_is_not_taken_for_gold() -> None:
    passages = [Passage(text=f"p{i}") for i in range(3)]
    bad = QAExample(id="b", question="q?", answers=["a"], passages=passages, gold=[7, 7])
    ok = QAExample(id="o", question="q?", answers=["a"], passages=passages, gold=[1, 1])
    copies = without_gold([bad, ok], 1.0, seed=0)
    assert [c.id for c in copies] == ["o#no-gold"]
    assert [p.text for p in copies[0].passages] == ["p0", "p2"]


def test_one_fold_is_refused() -> None:
    with pytest.raises(ValueError, match="use 0 \\(off\\) or at least 2"):
        EncoderBCConfig(cross_fit_folds=1)
    assert EncoderBCConfig(cross_fit_folds=0).cross_fit_folds == 0


def test_scorer_rows_keep_gold_the_bm25_look_alikes_and_fresh_random_distractors() -> None:
    from dynrag.training.encoder.scorer import scorer_dataset

    words = ["apple", "banana", "cherry", "grape", "lemon", "mango", "melon", "olive", "pear"]
    passages = [Passage(id=str(i), title=w, text=f"{w} is a fruit.") for i, w in enumerate(words)]
    # Passage 8 names the question's words most often: the hard distractor; 0 and 1 are gold.
    passages[8] = Passage(id="8", title="pear", text="Which fruit is sweet? A sweet sweet fruit.")
    ex = QAExample(
        id="q", question="Which fruit is sweet?", answers=["x"], passages=passages, gold=[0, 1]
    )
    plain = scorer_dataset([ex], negatives=3, seed=0)
    assert len(plain) == 1
    rows = scorer_dataset([ex], negatives=3, seed=0, hard_negatives=1, draws=4)
    assert len(rows) == 4
    seen: set[str] = set()
    for docs, labels in zip(rows["docs"], rows["labels"], strict=True):
        assert len(docs) == 5  # 2 gold + 3 distractors
        assert sum(labels) == 2
        assert any(d.startswith("pear.") for d in docs)  # the hard one, in every copy
        seen |= {d for d, y in zip(docs, labels, strict=True) if not y}
    assert len(seen) > 3  # the random ones differ between copies
    assert scorer_dataset([ex], 3, 0, hard_negatives=1, draws=4)["docs"] == rows["docs"]


def test_scorer_distractor_options_must_fit_the_count() -> None:
    from dynrag.training.encoder.settings import ScorerTraining

    with pytest.raises(ValueError, match="exceeds negatives"):
        ScorerTraining(negatives=2, hard_negatives=3)
    with pytest.raises(ValueError, match="need negatives"):
        ScorerTraining(negatives=None, negative_draws=2)
    assert ScorerTraining(negatives=4, hard_negatives=4, negative_draws=2).hard_negatives == 4
