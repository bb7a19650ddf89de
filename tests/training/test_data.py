"""Experts, exclusion of evaluation questions, prompt rendering and the feedback schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dynrag import DynamicReranker
from dynrag.core.generative.backends.transformers import render_chat
from dynrag.core.presort import PRESORT_SCORE_KEY, presort_ranking
from dynrag.core.types import Passage
from dynrag.data.examples import QAExample
from dynrag.training.causal_lm.data import PromptBuilder
from dynrag.training.feedback import FeedbackRecord, feedback_pairs, read_feedback
from dynrag.training.pipeline import TrainConfig
from dynrag.training.questions import load_train_examples
from dynrag.training.stages.bc import BCConfig, expert_selection, with_missing_gold

from .conftest import HOTPOT_TRAIN, HOTPOT_VAL


def _example(gold: list[int] | None) -> QAExample:
    return QAExample(
        id="x",
        question="q",
        answers=["a"],
        passages=[Passage(text=str(i)) for i in range(5)],
        gold=gold,
    )


def test_gold_expert_orders_gold_by_teacher_and_never_pads() -> None:
    scores = [0.1, 0.9, 0.3, 0.8, 0.2]
    sel = expert_selection(_example([0, 2]), BCConfig(), lambda ex: scores)
    assert sel == [2, 0]  # only the gold passages, best teacher score first
    assert expert_selection(_example([]), BCConfig(), lambda ex: scores) == []  # None target


def test_teacher_expert_uses_cutoff_and_max_k() -> None:
    scores = [0.1, 0.9, 0.5, 0.8, 0.6]
    cfg = BCConfig(expert="teacher", teacher_cutoff=0.55, teacher_max_k=2)
    assert expert_selection(_example([0]), cfg, lambda ex: scores) == [1, 3]
    unlabelled = expert_selection(_example(None), BCConfig(teacher_cutoff=0.7), lambda ex: scores)
    assert unlabelled == [1, 3]
    with pytest.raises(ValueError, match="no gold passages"):
        expert_selection(_example(None), BCConfig(), None)


def test_evaluation_questions_are_excluded(tmp_path: Path) -> None:
    val = json.loads(HOTPOT_VAL.read_text())[:3]
    train = json.loads(HOTPOT_TRAIN.read_text())[:5]
    no_candidates = {**train[4], "_id": "empty", "question": "Nothing?", "context": []}
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps([val[0], train[0], no_candidates, *val[1:], *train[1:4]]))
    cfg = TrainConfig(data={"train": [mixed], "exclude": [HOTPOT_VAL]}, max_candidates=6)
    examples = load_train_examples(cfg)
    assert [e.id for e in examples] == [t["_id"] for t in train[:4]]  # no val, no empty one
    assert [e.id for e in load_train_examples(cfg, limit=3)] == [t["_id"] for t in train[:3]]
    # limit counts the questions left after exclusion
    limited = TrainConfig(data={"train": [mixed], "exclude": [HOTPOT_VAL], "limit": 3})
    assert [e.id for e in load_train_examples(limited)] == [train[0]["_id"], train[1]["_id"]]
    assert all(len(e.passages) == 6 for e in examples)
    assert all(g < 6 for e in examples for g in e.gold or [])


def test_missing_gold_copies_keep_the_rest_of_the_gold() -> None:
    examples = load_train_examples(TrainConfig(data={"train": [HOTPOT_TRAIN], "limit": 8}))
    one_gold = examples[0].model_copy(update={"id": "single", "gold": examples[0].gold[:1]})
    copies = with_missing_gold([*examples, one_gold], 0.5, seed=0)
    assert len(copies) == 4  # half of the 8 with two gold passages; never the single-gold one
    assert copies == with_missing_gold([*examples, one_gold], 0.5, seed=0)  # seeded
    by_id = {e.id: e for e in examples}
    for copy in copies:
        original = by_id[copy.id.removesuffix("#missing-gold")]
        assert copy.id.endswith("#missing-gold")
        assert len(copy.passages) == len(original.passages) - 1
        assert len(copy.gold) == len(original.gold) - 1
        kept_gold = {copy.passages[g].text for g in copy.gold}
        assert kept_gold < {original.passages[g].text for g in original.gold}
        removed = {p.text for p in original.passages} - {p.text for p in copy.passages}
        assert len(removed) == 1
        assert removed <= {original.passages[g].text for g in original.gold}
    assert with_missing_gold(examples, 0.0, seed=0) == []


def test_file_limits_weight_the_mix_of_sources(tmp_path: Path) -> None:
    train = json.loads(HOTPOT_TRAIN.read_text())[:6]
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(train[:3]))
    second.write_text(json.dumps(train[3:]))
    cfg = TrainConfig(data={"train": [first, second], "limit": 1, "file_limits": {second: 3}})
    assert [e.id for e in load_train_examples(cfg)] == [t["_id"] for t in train[:1] + train[3:]]
    # the YAML form: keys are paths as written in data.train
    from_yaml = TrainConfig.model_validate(
        {"data": {"train": [str(first), str(second)], "file_limits": {str(first): 2}}}
    )
    assert [e.id for e in load_train_examples(from_yaml)] == [
        t["_id"] for t in train[:2] + train[3:]
    ]
    with pytest.raises(ValueError, match=r"not in data\.train"):
        TrainConfig(data={"train": [first], "file_limits": {second: 3}})
    with pytest.raises(ValueError, match="at least 1"):
        TrainConfig(data={"train": [first], "file_limits": {first: 0}})


def test_training_prompt_is_the_inference_prompt(
    tiny_reranker: DynamicReranker, hotpot_val: Any
) -> None:
    ex = hotpot_val[0]
    tok = tiny_reranker.backend.tokenizer
    builder = PromptBuilder(tok, "dynamicrag-v1", tiny_reranker.max_passage_tokens)
    passages = [Passage(**p) for p in ex["passages"]]
    state = tiny_reranker._prepare(ex["question"], passages, tiny_reranker.policy)
    expected = render_chat(tok, tiny_reranker.prompt_format.messages(ex["question"], state.shown))
    assert builder.prompt(ex["question"], passages) == expected
    assert builder.completion([2, 0]) == "[3], [1]" + tok.eos_token
    assert builder.completion([]) == "None" + tok.eos_token


def test_feedback_schema_accepts_both_record_kinds() -> None:
    rated = FeedbackRecord.model_validate(
        {
            "query": "q",
            "passages": ["a", {"title": "T", "text": "b"}],
            "selection": [1],
            "answer": "x",
            "rating": 0.7,
            "user": "extra fields are kept",
        }
    )
    assert rated.passages[1].title == "T"
    whole = FeedbackRecord.model_validate_json(
        '{"query": "q", "passages": ["a"], "selection": [0], "rating": 1}'
    )
    assert whole.rating == 1.0  # a JSON integer is a number
    pref = FeedbackRecord.model_validate(
        {"query": "q", "passages": ["a", "b"], "preferred": [1], "rejected": [0]}
    )
    assert pref.rating is None


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"query": "q", "passages": ["a"], "selection": [0]}, "needs a rating"),
        ({"query": "q", "passages": ["a"], "rating": 0.5}, "needs the selection"),
        ({"query": "q", "passages": ["a", "b"], "selection": [0, 0], "rating": 1}, "repeats"),
        ({"query": "q", "passages": ["a"], "selection": [0], "rating": 7}, "less than or equal"),
        ({"query": "q", "passages": ["a", "b"], "preferred": [1]}, "both preferred and rejected"),
        ({"query": "", "passages": ["a"], "selection": [0], "rating": 1}, "at least 1 character"),
        # Strict types (issue 19 item 13): these were coerced and trained on.
        ({"query": "q", "passages": ["a", "b"], "selection": [True], "rating": 1}, "integer"),
        ({"query": "q", "passages": ["a"], "selection": ["0"], "rating": 1}, "integer"),
        ({"query": "q", "passages": ["a"], "selection": [0.0], "rating": 1}, "integer"),
        ({"query": "q", "passages": ["a"], "selection": [0], "rating": True}, "number"),
        ({"query": "q", "passages": ["a"], "selection": [0], "rating": "0.5"}, "number"),
        ({"query": "   ", "passages": ["a"], "selection": [0], "rating": 1}, "query is blank"),
        ({"query": "q", "passages": ["a", "b"], "preferred": [False], "rejected": [1]}, "integer"),
    ],
)
def test_feedback_schema_rejects_bad_records(
    record: dict[str, Any], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text("\n" + json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=message) as err:
        read_feedback(path)
    assert f"{path}:2:" in str(err.value)


def test_rating_pairs_drop_ties() -> None:
    base = {"query": "q", "passages": ["a", "b", "c"]}
    records = [
        FeedbackRecord.model_validate({**base, "selection": [0], "rating": 0.5}),
        FeedbackRecord.model_validate({**base, "selection": [1], "rating": 0.5}),
        FeedbackRecord.model_validate({**base, "query": "other", "selection": [2], "rating": 0.9}),
        FeedbackRecord.model_validate(
            {**base, "query": "other", "selection": [0, 1], "rating": 0.2}
        ),
    ]
    pairs = feedback_pairs(records)
    assert [(p.query, p.chosen, p.rejected) for p in pairs] == [("other", [2], [0, 1])]


def test_both_feedback_stages_read_their_logs_with_one_settings_class(tmp_path: Path) -> None:
    from dynrag.training.feedback import FeedbackLogs
    from dynrag.training.stages.encoder_feedback import EncoderFeedbackConfig
    from dynrag.training.stages.feedback import FeedbackConfig

    log = tmp_path / "log.jsonl"
    base = {"query": "q", "passages": ["a", "b"]}
    log.write_text(
        json.dumps({**base, "selection": [0], "rating": 0.9})
        + "\n"
        + json.dumps({**base, "selection": [1], "rating": 0.4})
        + "\n"
    )
    cfg = TrainConfig(feedback={"path": [log]}, **{"encoder-feedback": {"path": [log]}})
    for key, cls in (("feedback", FeedbackConfig), ("encoder-feedback", EncoderFeedbackConfig)):
        settings = cfg.section(key, cls)
        assert isinstance(settings, FeedbackLogs)
        assert settings.files(key) == [log]
        records = settings.records()
        assert [(p.chosen, p.rejected) for p in settings.pairs(records)] == [([0], [1])]
        with pytest.raises(ValueError, match=f"^{key}.path names no file"):
            cls().files(key)
    assert (
        cfg.section("feedback", FeedbackConfig)
        .model_copy(update={"rating_margin": 0.5})
        .pairs(records)
        == []
    )
    # each section keeps its own keys: DPO fields for feedback, the head for encoder-feedback
    with pytest.raises(ValidationError, match="head"):
        TrainConfig(feedback={"head": {}})
    with pytest.raises(ValidationError, match="beta"):
        TrainConfig(**{"encoder-feedback": {"beta": 0.1}})


def test_presort_orders_candidates_before_the_cut_and_keeps_gold() -> None:
    plain = load_train_examples(TrainConfig(data={"train": [HOTPOT_TRAIN], "limit": 6}))
    cfg = TrainConfig(data={"train": [HOTPOT_TRAIN], "limit": 6}, presort="bm25", max_candidates=4)
    presorted = load_train_examples(cfg)
    for a, b in zip(plain, presorted, strict=True):
        order, scores = presort_ranking("bm25", a.question, a.passages)
        assert scores is not None
        assert [p.text for p in b.passages] == [a.passages[i].text for i in order[:4]]
        # each carries its score, taken over all the candidates before the cut
        assert [p.metadata[PRESORT_SCORE_KEY] for p in b.passages] == pytest.approx(scores[:4])
        gold_texts = {a.passages[g].text for g in a.gold or [] if g in order[:4]}
        assert {b.passages[g].text for g in b.gold or []} == gold_texts
    # BM25 brings gold forward: more gold survives the cut to 4 than in file order
    kept = sum(len(e.gold or []) for e in presorted)
    cut = load_train_examples(
        TrainConfig(data={"train": [HOTPOT_TRAIN], "limit": 6}, max_candidates=4)
    )
    assert kept > sum(len(e.gold or []) for e in cut)


def test_scored_prompts_show_the_presort_scores_and_need_a_presort(tiny_tokenizer: Any) -> None:
    with pytest.raises(ValidationError, match="set presort"):
        TrainConfig(prompt_format="dynrag-scored-v1")
    cfg = TrainConfig(
        data={"train": [HOTPOT_TRAIN], "limit": 2},
        prompt_format="dynrag-scored-v1",
        presort="bm25",
        max_candidates=4,
    )
    example = load_train_examples(cfg)[0]
    builder = PromptBuilder(tiny_tokenizer, cfg.prompt_format, 16)
    user = builder.messages(example.question, example.passages)[-1]["content"]
    scores = [p.metadata[PRESORT_SCORE_KEY] for p in example.passages]
    for i, (p, s) in enumerate(zip(example.passages, scores, strict=True), start=1):
        assert f"{i}. Topic: {p.title} (score {s:.1f})" in user


def test_ids_are_unique_across_training_files(tmp_path: Path) -> None:
    """The same id in two files (HotpotQA's dev and retrieved files share 33) must not clash."""
    train = json.loads(HOTPOT_TRAIN.read_text())[:3]
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(train))
    second.write_text(json.dumps([train[1], {**train[2], "_id": None}]))
    cfg = TrainConfig(data={"train": [first, second]})
    ids = [e.id for e in load_train_examples(cfg)]
    assert ids == [t["_id"] for t in train] + [f"{train[1]['_id']}#{second}", "b.json:2"]


def test_a_reranker_of_any_family_can_teach(hotpot_val: Any) -> None:
    # reranker:<model> loaded the generative class only, so the default encoder raised TypeError
    from dynrag.training.config import SharedConfig
    from dynrag.training.stages.bc import make_teacher

    teacher = make_teacher("reranker:dynrag-minilm-cut", SharedConfig())
    assert teacher is not None
    ex = hotpot_val[0]
    example = QAExample(
        id="x",
        question=ex["question"],
        answers=[ex["answer"]],
        passages=[Passage(**p) for p in ex["passages"]],
    )
    scores = teacher(example)
    assert len(scores) == len(ex["passages"])
    assert max(scores) == 1.0
    assert sorted(s for s in scores if s) == sorted(
        1.0 / r for r in range(1, sum(1 for s in scores if s) + 1)
    )


def test_unreadable_feedback_logs_and_manifests_are_one_line(tmp_path: Path) -> None:
    # Issue 36 item 16: a folder, non-UTF-8 text, an invalid manifest: tracebacks before
    from dynrag.training.pipeline import TrainConfig
    from dynrag.training.rundir import RunDir

    with pytest.raises(ValueError, match="a folder, not a feedback JSONL file"):
        read_feedback(tmp_path)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"query": "q"}\n{"query": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"latin.jsonl:2: not UTF-8 text"):
        read_feedback(latin)
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{torn")
    with pytest.raises(ValueError, match=r"manifest.json: not a run manifest"):
        RunDir(TrainConfig(run_dir=str(run)))
    (run / "manifest.json").write_text("[1]")
    with pytest.raises(ValueError, match=r"no 'stages' object"):
        RunDir(TrainConfig(run_dir=str(run)))


def test_a_resumed_record_without_an_id_is_named(tmp_path: Path) -> None:
    from dynrag.data.jsonl import append_jsonl
    from dynrag.training.stages.base import done_ids

    path = tmp_path / "rewards.jsonl"
    append_jsonl(path, [{"id": "a"}, {"samples": []}])
    with pytest.raises(ValueError, match=r"rewards.jsonl: record 2 has no 'id'"):
        done_ids(path)
