"""Metrics on hand-worked cases, including the reference code's mistakes (upstream.md)."""

from __future__ import annotations

import math

import pytest

from dynrag.data.examples import normalize_answer
from dynrag.eval.metrics import (
    accuracy,
    bootstrap_ci,
    exact_match,
    ndcg,
    pair_auc,
    percentile,
    selection_prf,
    token_f1,
)


def test_squad_normalisation() -> None:
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a pear") == "apple pear"


def test_exact_match_is_normalised_and_takes_the_best_alias() -> None:
    assert exact_match("The Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("NYC", ["New York City", "nyc"]) == 1.0
    assert exact_match("New York", ["New York City"]) == 0.0


@pytest.mark.parametrize("prediction", ["", "   ", "the", "."])
def test_empty_prediction_scores_nothing(prediction: str) -> None:
    # The reference code tested `prediction in gold`, so an empty answer scored 1.
    assert exact_match(prediction, ["Paris"]) == 0.0
    assert token_f1(prediction, ["Paris"]) == 0.0
    assert accuracy(prediction, ["Paris"]) == 0.0


def test_no_two_way_substring_match() -> None:
    # Reference code: EM was substring containment either way.
    assert exact_match("Paris, France", ["Paris"]) == 0.0
    assert exact_match("Par", ["Paris"]) == 0.0
    # accuracy is containment of the gold in the prediction, one way, on word boundaries
    assert accuracy("It is Paris, France", ["Paris"]) == 1.0
    assert accuracy("Par", ["Paris"]) == 0.0
    assert accuracy("Parisian", ["Paris"]) == 0.0


def test_token_f1_worked_example() -> None:
    # pred tokens [cat, sat], gold [cat, sat, down]: P = 1, R = 2/3, F1 = 0.8
    assert token_f1("The cat sat", ["cat sat down"]) == pytest.approx(0.8)
    assert token_f1("The cat sat", ["dog", "cat sat down"]) == pytest.approx(0.8)
    assert token_f1("cat", []) == 0.0


def test_selection_prf() -> None:
    assert selection_prf([3, 0, 5], [0, 3]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert selection_prf([], [0, 3]) == (0.0, 0.0, 0.0)
    assert selection_prf([], []) == (1.0, 1.0, 1.0)
    assert selection_prf([2], []) == (0.0, 1.0, 0.0)


def test_ndcg_worked_example() -> None:
    assert ndcg([3, 0], [0, 3]) == pytest.approx(1.0)
    ideal = 1 + 1 / math.log2(3)
    assert ndcg([5, 0], [0, 3]) == pytest.approx((1 / math.log2(3)) / ideal)
    assert ndcg([], []) == 1.0


def test_bootstrap_and_percentile() -> None:
    low, high = bootstrap_ci([0.0, 1.0] * 50)
    assert low < 0.5 < high
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25)
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert math.isnan(percentile([], 50))


def test_pair_auc() -> None:
    assert pair_auc([3.0, 2.0], [1.0, 0.0]) == 1.0
    assert pair_auc([0.0], [1.0, 2.0]) == 0.0
    # pairs: 2>1 win, 2=2 half, 0<1 loss, 0<2 loss
    assert pair_auc([2.0, 0.0], [1.0, 2.0]) == (1 + 0.5) / 4
    assert pair_auc([], [1.0]) is None
    assert pair_auc([1.0], []) is None
