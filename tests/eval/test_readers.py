from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynrag.data.readers import detect_format, read_examples

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.parametrize(
    ("relative", "fmt", "candidates"),
    [
        ("hotpotqa/hotpot_dev_distractor_val.json", "hotpotqa", 10),
        ("hotpotqa/hotpot_dev_retrieved.jsonl", "hotpotqa", None),
        ("2wikimultihopqa/2wikimultihopqa_dev_subset.json", "hotpotqa", 10),
        ("musique/musique_ans_v1.0_train_subset.jsonl", "musique", 20),
    ],
)
def test_shared_files(relative: str, fmt: str, candidates: int | None) -> None:
    examples = read_examples(SHARED_DATA / relative, limit=20)
    assert len(examples) == 20
    for ex in examples:
        assert ex.question
        assert ex.answers
        assert ex.gold is not None
        assert all(0 <= i < len(ex.passages) for ex in examples for i in ex.gold or [])
        if candidates:
            assert len(ex.passages) == candidates
    if candidates:  # distractor settings: gold passages are always there
        assert all(len(ex.gold or []) >= 2 for ex in examples)


def test_musique_aliases_count(tmp_path: Path) -> None:
    ex = read_examples(SHARED_DATA / "musique/musique_ans_v1.0_train_subset.jsonl", limit=100)
    assert any(len(e.answers) > 1 for e in ex)


def test_ctxs_format_has_no_gold(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    rows = [
        {"question": "q1", "answers": ["a", "b"], "ctxs": [{"title": "T", "text": "x"}]},
        {"question": "q2", "answers": ["c"], "docs": [{"title": "U", "text": "y"}]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = read_examples(path)
    assert [e.gold for e in examples] == [None, None]
    assert examples[0].answers == ["a", "b"]
    assert examples[1].passages[0].title == "U"
    assert examples[0].id == "eval.jsonl:1"


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "answers": ["a"], "ctxs": []}\n{"question": \n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        read_examples(path)
    path.write_text('{"question": "q", "answers": ["a"], "ctxs": [{"title": "t"}]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: malformed record: missing field 'text'"):
        read_examples(path)
    path.write_text('{"foo": 1}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*unknown record format"):
        read_examples(path)


def test_unknown_format_name() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        read_examples(SHARED_DATA / "hotpotqa/hotpot_dev_distractor_val.json", format="squad")
    assert detect_format({"question": "q", "ctxs": []}) == "ctxs"


def test_nested_and_numeric_answers(tmp_path: Path) -> None:
    path = tmp_path / "asqa.jsonl"
    row = {"question": "q", "answers": [["a", "b"], ["b", 1999]], "docs": [{"text": "x"}]}
    path.write_text(json.dumps(row) + "\n")
    assert read_examples(path)[0].answers == ["a", "b", "1999"]


def test_null_and_repeated_ids_become_unique(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The shared 2WikiMultihopQA file has records with "_id": null; they must not share one id.
    path = SHARED_DATA / "2wikimultihopqa/2wikimultihopqa_dev_subset.json"
    raw = json.loads(path.read_text())
    examples = read_examples(path)
    assert any(r["_id"] is None for r in raw)
    assert len({e.id for e in examples}) == len(examples) == len(raw)
    assert "None" not in {e.id for e in examples}
    for number, (r, e) in enumerate(zip(raw, examples, strict=True), start=1):
        assert e.id == (r["_id"] or f"{path.name}:{number}")

    record = {"question": "q?", "answer": "a", "context": [["T", ["t."]]], "supporting_facts": []}
    rows = [{**record, "_id": "x"}, {**record, "_id": "x"}, {**record, "_id": None}]
    file = tmp_path / "dup.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level("WARNING", logger="dynrag.data.readers"):
        ids = [e.id for e in read_examples(file)]
    assert ids == ["x", "x#dup.jsonl:2", "dup.jsonl:3"]
    assert "1 records repeat an id used before in the file (first: 'x')" in caplog.text
