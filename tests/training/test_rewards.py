"""Reward terms on hand-worked cases, and the gold-answer likelihood on the real SmolLM2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dynrag.core.types import Passage
from dynrag.training.rewards import (
    RewardConfig,
    RewardScorer,
    RewardTerms,
    RewardWeights,
    ScoredSample,
    brevity,
    combine,
    normalize_judge_score,
    rouge_l,
)
from dynrag.training.stages.grpo import SelectionReward
from dynrag.training.stages.pairs import best_worst_pair

SELECTION_ONLY = RewardWeights(em=0, f1=0, gold_likelihood=0, brevity=0, selection=1)


def test_two_samples_with_different_k_get_different_penalties() -> None:
    # The published code computed 1/(1+len(all samples)): the same for every sample.
    assert brevity(1, 10) == pytest.approx(0.9)
    assert brevity(4, 10) == pytest.approx(0.6)
    assert brevity(0, 10) == 1.0
    assert brevity(12, 10) == 0.0  # clipped, never negative


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("85", 0.85), (85, 0.85), ("Score: 70/100", 0.70), ("100", 1.0), ("250", 1.0), ("-3", 0.0)],
)
def test_judge_scores_are_normalised_to_unit_interval(raw: object, expected: float) -> None:
    assert normalize_judge_score(raw) == pytest.approx(expected)  # type: ignore[arg-type]


def test_unreadable_judge_score_is_none() -> None:
    assert normalize_judge_score("excellent") is None
    assert normalize_judge_score(None) is None


def test_empty_answer_scores_zero_on_every_answer_term() -> None:
    scorer = RewardScorer(
        RewardConfig(weights=RewardWeights(em=1, f1=1, rouge_l=1, gold_likelihood=0, brevity=0))
    )
    passages = [Passage(text="Paris is the capital of France.")]
    for empty in ("", "   ", "the"):
        terms = scorer.terms("capital of France?", passages, [0], empty, ["Paris"])
        assert (terms.em, terms.f1, terms.rouge_l) == (0.0, 0.0, 0.0)


def test_exact_match_f1_rouge_on_worked_example() -> None:
    assert rouge_l("the city of Paris", ["Paris"]) == pytest.approx(2 * 1 * 0.25 / 1.25)
    scorer = RewardScorer(RewardConfig(weights=RewardWeights(em=1, f1=1, gold_likelihood=0)))
    terms = scorer.terms("q", [Passage(text="x")], [0], "Paris, France", ["Paris", "France"])
    assert terms.em == 0.0
    assert terms.f1 == pytest.approx(2 / 3)  # precision 1/2, recall 1 against "Paris"


def test_combine_is_the_weighted_sum_of_computed_terms() -> None:
    terms = RewardTerms(em=1.0, f1=0.5, gold_likelihood=0.2, brevity=0.8)
    weights = RewardWeights(em=0.1, f1=0.2, gold_likelihood=0.6, brevity=0.1, judge=0.0)
    assert combine(terms, weights) == pytest.approx(0.1 + 0.1 + 0.12 + 0.08)


def test_every_term_stays_in_unit_interval() -> None:
    scorer = RewardScorer(
        RewardConfig(weights=RewardWeights(em=1, f1=1, rouge_l=1, semantic=1, gold_likelihood=0))
    )
    terms = scorer.terms("q", [Passage(text="a"), Passage(text="b")], [1], "Paris", ["Paris"])
    for name, value in terms.model_dump().items():
        assert value is None or 0.0 <= value <= 1.0, name
    assert terms.semantic == pytest.approx(1.0, abs=1e-5)


def test_judge_weight_needs_a_judge_model() -> None:
    with pytest.raises(ValueError, match="judge"):
        RewardConfig(weights=RewardWeights(judge=0.2))


def test_ties_give_no_pair_and_unreadable_samples_are_rejected() -> None:
    a = ScoredSample(text="[1]", indices=[0], status="ok", reward=0.5)
    b = ScoredSample(text="[2]", indices=[1], status="ok", reward=0.5)
    assert best_worst_pair([a, b], margin=0.0) is None
    c = ScoredSample(text="[2]", indices=[1], status="ok", reward=0.49)
    assert best_worst_pair([a, c], margin=0.05) is None  # under the margin
    assert best_worst_pair([a, c], margin=0.0) == (a, c)
    bad = ScoredSample(text="blah", indices=[], status="fallback", reward=0.0)
    assert best_worst_pair([a, bad], margin=0.0) == (a, bad)


@pytest.mark.slow
def test_gold_likelihood_separates_samples_the_answer_metrics_cannot() -> None:
    """The issue's point: with SmolLM2 as generator, selections whose answers all score F1 0
    still differ in how likely they make the gold answer."""
    scorer = RewardScorer(
        RewardConfig(
            generator="smollm2-135m-instruct",
            weights=RewardWeights(em=0.1, f1=0.2, gold_likelihood=0.6, brevity=0.1),
            max_answer_tokens=16,
        ),
        device="cpu",
    )
    passages = [
        Passage(title="Eiffel Tower", text="The Eiffel Tower is a wrought-iron tower in Paris."),
        Passage(title="Banana", text="The banana is an elongated, edible fruit."),
        Passage(title="Gustave Eiffel", text="Gustave Eiffel's company designed the Eiffel Tower."),
    ]
    q = "In which city is the tower designed by Gustave Eiffel's company?"
    with_gold = scorer.terms(q, passages, [2, 0], "", ["Paris"]).gold_likelihood or 0.0
    without = scorer.terms(q, passages, [1], "", ["Paris"]).gold_likelihood or 0.0
    assert 0.0 < without < with_gold <= 1.0
    samples = [
        {"text": "[3], [1]", "indices": [2, 0], "status": "ok"},
        {"text": "[2]", "indices": [1], "status": "ok"},
        {"text": "[3], [1]", "indices": [2, 0], "status": "ok"},
    ]
    scored = scorer.score("q1", q, passages, ["Paris"], samples)
    assert scored[0].reward > scored[1].reward
    assert scored[0].reward == scored[2].reward  # same selection, one generation (cached)
    assert math.isclose(scored[0].terms.gold_likelihood or 0, with_gold, rel_tol=1e-4)


def test_selection_term_is_f1_against_labelled_gold() -> None:
    scorer = RewardScorer(RewardConfig(weights=SELECTION_ONLY))
    passages = [Passage(text=t) for t in ("a", "b", "c")]

    def term(selection: list[int], gold: list[int] | None) -> float | None:
        return scorer.terms("q", passages, selection, "x", ["y"], gold).selection

    assert term([0], [0]) == 1.0
    assert term([0, 1], [0]) == pytest.approx(2 / 3)  # one gold: stopping at it scores more
    assert term([0, 1], [0, 1]) == 1.0
    assert term([2], [0, 1]) == 0.0
    assert term([], []) == 1.0  # nothing gold, nothing chosen
    assert term([0], []) == 0.0
    assert term([0], None) == 0.0  # unlabelled question: the term cannot reward anything
    assert RewardScorer(RewardConfig()).terms("q", passages, [0], "x", ["y"]).selection is None


def test_grpo_reward_reads_the_gold_column(tiny_model_dir: Path) -> None:
    """TRL hands dataset columns to the reward function; ``gold`` is JSON (null: unlabelled)."""
    config = RewardConfig(
        generator=str(tiny_model_dir), weights=SELECTION_ONLY, max_answer_tokens=4
    )
    reward = SelectionReward(RewardScorer(config, device="cpu"))
    passages = json.dumps([Passage(text=t).model_dump() for t in ("a b", "c d", "e f")])
    completions = ["[1]", "[1], [2]", "[3]", "[1]"]  # the last one unlabelled
    got = reward(
        ["p"] * 4,
        completions,
        id=["q1"] * 3 + ["q2"],
        question=["q?"] * 4,
        answers=[["a"]] * 4,
        passages=[passages] * 4,
        gold=[json.dumps([0])] * 3 + [json.dumps(None)],
    )
    assert got == pytest.approx([1.0, 2 / 3, 0.0, 0.0])
