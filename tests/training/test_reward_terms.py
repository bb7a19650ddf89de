"""A reward term is one module plus one registry line: a toy term registered here goes from the
YAML config through `RewardScorer` into the stored samples and the encoder's prefix rewards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynrag.core.types import Passage
from dynrag.training.pipeline import load_config
from dynrag.training.rewards.engine import RewardScorer, RewardTerms, ScoredSample, combine
from dynrag.training.rewards.settings import RewardConfig, RewardWeights
from dynrag.training.rewards.terms import REWARD_TERMS, RewardTerm, TermInput, term_names


class TitleInQuestion(RewardTerm):
    """Toy term: the share of selected passages whose title the question names."""

    name = "title_in_question"
    description = "selected titles named in the question"
    needs_answer = False

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        if not sample.selection:
            return 0.0
        q = sample.question.lower()
        hits = [(sample.passages[i].title or "").lower() in q for i in sample.selection]
        return sum(hits) / len(hits)


@pytest.fixture
def toy_term() -> Iterator[str]:
    REWARD_TERMS.register(TitleInQuestion.name, TitleInQuestion)  # the one registry line
    yield TitleInQuestion.name
    REWARD_TERMS.unregister(TitleInQuestion.name)


PASSAGES = [
    Passage(title="Paris", text="Paris is the capital of France."),
    Passage(title="Lyon", text="Lyon is a city in France."),
    Passage(title="Berlin", text="Berlin is the capital of Germany."),
]
OFF = {"em": 0, "f1": 0, "gold_likelihood": 0, "brevity": 0}


def test_builtin_terms_are_registered_with_their_defaults() -> None:
    assert term_names() == sorted(
        ["em", "f1", "rouge_l", "semantic", "gold_likelihood", "brevity", "judge", "selection"]
    )
    assert RewardWeights().items() == {
        "brevity": 0.1,
        "em": 0.1,
        "f1": 0.2,
        "gold_likelihood": 0.6,
        "judge": 0.0,
        "rouge_l": 0.0,
        "selection": 0.0,
        "semantic": 0.0,
    }


def test_a_registered_term_is_configured_scored_and_stored(toy_term: str, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(
        f"reward:\n  weights: {{em: 0, f1: 0, gold_likelihood: 0, brevity: 0.5, {toy_term}: 1.0}}\n"
    )
    reward = load_config(config).reward
    assert reward.weights.weight(toy_term) == 1.0
    scorer = RewardScorer(reward)
    assert not scorer.needs_answer  # no generator is loaded for these two terms
    terms = scorer.terms("Is Paris bigger than Berlin?", PASSAGES, [0, 1], "", ["yes"])
    assert getattr(terms, toy_term) == pytest.approx(0.5)
    assert terms.brevity == pytest.approx(1 / 3)
    assert terms.em is None  # weight 0: not computed
    assert combine(terms, reward.weights) == pytest.approx(1.0 * 0.5 + 0.5 / 3)
    samples = [{"text": "[1], [2]", "indices": [0, 1], "status": "ok"}]
    scored = scorer.score("q1", "Is Paris bigger than Berlin?", PASSAGES, ["yes"], samples)
    assert scored[0].answer is None  # no term reads an answer: none was generated
    assert scorer._generator is None
    assert scored[0].reward == pytest.approx(combine(terms, reward.weights))
    stored = ScoredSample(text="[1], [2]", indices=[0, 1], status="ok", terms=terms)
    back = ScoredSample.model_validate(json.loads(stored.model_dump_json()))
    assert back.terms.by_name()[toy_term] == pytest.approx(0.5)


def test_an_unregistered_term_is_refused_with_the_registered_names() -> None:
    with pytest.raises(ValueError, match=r"unknown reward term.*title_in_question.*registered: "):
        RewardWeights(title_in_question=1.0)
    for bad in (-1, float("nan"), float("inf"), "many", None, True):
        with pytest.raises(ValueError, match=r"reward\.weights\.f1 must be a finite number >= 0"):
            RewardWeights(f1=bad)
    with pytest.raises(ValueError, match="a mapping of term names"):
        RewardConfig.model_validate({"weights": None})
    with pytest.raises(ValueError, match="at least one reward weight"):
        RewardWeights(**OFF)


def test_a_term_checks_the_config_it_needs() -> None:
    with pytest.raises(ValueError, match=r"needs a reward\.judge section"):
        RewardConfig(weights=RewardWeights(judge=0.5))


def test_terms_of_old_samples_load_and_unknown_values_are_kept(toy_term: str) -> None:
    old = RewardTerms.model_validate({"em": 1.0, "f1": 0.5})
    assert old.by_name()[toy_term] is None
    assert old.em == 1.0


def test_registering_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        REWARD_TERMS.register("f1", TitleInQuestion)
    with pytest.raises(ValueError, match="is not registered"):
        REWARD_TERMS.unregister("no_such_term")


def test_weights_read_as_yaml_writes_them_and_stay_checked(tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("reward:\n  weights: {selection: 1e-2, f1: 2}\n")  # YAML: '1e-2' a string
    weights = load_config(config).reward.weights
    assert weights.selection == 0.01
    assert weights.f1 == 2.0
    weights.em = 1  # assignment is checked and stored as a float
    assert weights.items()["em"] == 1.0
    assert isinstance(weights.model_dump()["em"], float)
    with pytest.raises(ValueError, match="finite number"):
        weights.em = -0.5
    with pytest.raises(ValueError, match="unknown reward term"):
        weights.emm = 1.0


def test_a_plugin_term_at_weight_zero_leaves_the_dump_unchanged(toy_term: str) -> None:
    """So registering a term in one process and not another does not change stage hashes."""
    REWARD_TERMS.unregister(toy_term)
    before = RewardWeights().model_dump()
    REWARD_TERMS.register(toy_term, TitleInQuestion)
    assert RewardWeights().model_dump() == before
    assert RewardWeights(**{toy_term: 0.5}).model_dump()[toy_term] == 0.5
    assert RewardWeights.model_validate(RewardWeights(f1=0.3).model_dump()).f1 == 0.3


def test_term_values_are_plain_floats() -> None:
    import numpy as np

    terms = RewardTerms(f1=np.float32(0.5), em=1)
    assert type(terms.f1) is float
    assert json.loads(json.dumps(terms.model_dump()))["f1"] == 0.5
    with pytest.raises(ValueError, match="must be a number or None"):
        RewardTerms(f1="high")
