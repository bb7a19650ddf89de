"""`dynrag eval` end to end on every supported format, with tiny real models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynrag.cli import main
from dynrag.eval.metrics import exact_match, token_f1

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _ctxs_file(tmp_path: Path) -> Path:
    rows = []
    for line in (SHARED_DATA / "hotpotqa/hotpot_dev_retrieved.jsonl").read_text().splitlines()[:3]:
        r = json.loads(line)
        ctxs = [{"title": t, "text": "".join(s)} for t, s in r["context"]]
        rows.append({"question": r["question"], "answers": [r["answer"]], "ctxs": ctxs})
    path = tmp_path / "ctxs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "data",
    [
        "hotpotqa/hotpot_dev_distractor_val.json",
        "hotpotqa/hotpot_dev_retrieved.jsonl",
        "2wikimultihopqa/2wikimultihopqa_dev_subset.json",
        "musique/musique_ans_v1.0_train_subset.jsonl",
        "ctxs",
    ],
)
def test_eval_report_reproduces_from_records(
    data: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNRAG_CACHE", str(tmp_path / "cache"))
    path = _ctxs_file(tmp_path) if data == "ctxs" else SHARED_DATA / data
    out = tmp_path / "report"
    code = main(
        [
            "eval",
            "--data",
            str(path),
            "--limit",
            "3",
            "--reranker",
            str(tiny_model_dir),
            "--generator",
            str(tiny_model_dir),
            "--selectors",
            "dynamic,all,first-k:1,embed-k:1,2,bm25-k:1,hybrid-k:2,embed-threshold:0.3,oracle",
            "--max-new-tokens",
            "6",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    has_gold = data != "ctxs"
    expected = {
        "dynamic[" + tiny_model_dir.name + "]",
        "all",
        "first-k:1",
        "embed-k:1",
        "embed-k:2",
        "bm25-k:1",
        "hybrid-k:2",
        "embed-threshold:0.3",
    }
    if has_gold:
        expected.add("oracle")
    assert set(report["summary"]) == expected
    for name, summary in report["summary"].items():
        rows = [r for r in report["records"] if r["selector"] == name]
        assert len(rows) == summary["questions"] == 3
        for r in rows:
            assert {
                "question",
                "answers",
                "selected",
                "prediction",
                "em",
                "f1",
                "gold_logprob",
            } <= set(r)
            assert r["em"] == exact_match(r["prediction"], r["answers"])
            assert r["f1"] == token_f1(r["prediction"], r["answers"])
            assert r["k"] == len(r["selected"])
        for metric in ("em", "f1", "accuracy", "gold_logprob", "k", "context_tokens"):
            values = [r[metric] for r in rows]
            assert summary["means"][metric] == pytest.approx(sum(values) / len(values))
        if has_gold:
            assert summary["means"]["sel_f1"] == pytest.approx(sum(r["sel_f1"] for r in rows) / 3)
        else:
            assert summary["means"]["sel_f1"] is None
    first_k = [r for r in report["records"] if r["selector"] == "first-k:1"]
    assert all(r["selected"] == [0] for r in first_k)
    assert (out / "k_histogram.png").stat().st_size > 1000
    assert (out / "f1_vs_tokens.png").stat().st_size > 1000
    assert "| selector |" in (out / "report.md").read_text()


def test_generations_are_cached(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNRAG_CACHE", str(tmp_path / "cache"))
    args = [
        "eval",
        "--data",
        str(SHARED_DATA / "hotpotqa/hotpot_dev_distractor_val.json"),
        "--limit",
        "2",
        "--generator",
        str(tiny_model_dir),
        "--selectors",
        "first-k:1,all",
        "--max-new-tokens",
        "4",
    ]
    main([*args, "--out", str(tmp_path / "a")])
    cache_files = list((tmp_path / "cache" / "generations").iterdir())
    assert len(cache_files) == 1
    lines = cache_files[0].read_text().splitlines()
    assert len(lines) == 8  # 2 questions x 2 selectors x (answer + gold log-prob)
    main([*args, "--out", str(tmp_path / "b")])
    assert cache_files[0].read_text().splitlines() == lines
    a = json.loads((tmp_path / "a" / "report.json").read_text())["records"]
    b = json.loads((tmp_path / "b" / "report.json").read_text())["records"]
    assert [r["prediction"] for r in a] == [r["prediction"] for r in b]


def test_bad_selector_and_bad_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = SHARED_DATA / "hotpotqa/hotpot_dev_distractor_val.json"
    with pytest.raises(SystemExit, match="unknown selector"):
        main(
            [
                "eval",
                "--data",
                str(data),
                "--limit",
                "1",
                "--generator",
                str(tiny_model_dir),
                "--selectors",
                "magic",
                "--out",
                str(tmp_path),
            ]
        )
    with pytest.raises(SystemExit, match="needs a value"):
        main(
            [
                "eval",
                "--data",
                str(data),
                "--limit",
                "1",
                "--generator",
                str(tiny_model_dir),
                "--selectors",
                "embed-k",
                "--out",
                str(tmp_path),
            ]
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    with pytest.raises(SystemExit, match=r"bad\.jsonl:1"):
        main(["eval", "--data", str(bad), "--out", str(tmp_path)])


def test_selector_spec_parsing() -> None:
    from dynrag.eval.selectors import parse_selector_spec

    assert parse_selector_spec("dynamic,all,first-k:2,embed-k:1,2,3,5,bm25-k:2,oracle") == [
        ("dynamic", []),
        ("all", []),
        ("first-k", ["2"]),
        ("embed-k", ["1", "2", "3", "5"]),
        ("bm25-k", ["2"]),
        ("oracle", []),
    ]
    assert parse_selector_spec("embed-threshold:0.4,0.5") == [("embed-threshold", ["0.4", "0.5"])]
    with pytest.raises(ValueError, match="cannot read"):
        parse_selector_spec("all,3")


def test_exclude_drops_training_questions_before_the_limit(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNRAG_CACHE", str(tmp_path / "cache"))
    retrieved = [
        json.loads(line)
        for line in (SHARED_DATA / "hotpotqa/hotpot_dev_retrieved.jsonl").read_text().splitlines()
    ]
    train = SHARED_DATA / "hotpotqa/hotpot_dev_distractor_train.json"
    train_questions = {r["question"] for r in json.loads(train.read_text())}
    first = [r["question"] for r in retrieved[:12]]
    assert any(q in train_questions for q in first)  # the file's head holds training questions
    expected = [r["question"] for r in retrieved if r["question"] not in train_questions][:5]
    out = tmp_path / "report"
    args = ["eval", "--data", str(SHARED_DATA / "hotpotqa/hotpot_dev_retrieved.jsonl")]
    args += ["--exclude", str(train), "--limit", "5", "--generator", str(tiny_model_dir)]
    args += ["--selectors", "first-k:1", "--max-new-tokens", "2", "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert [r["question"] for r in report["records"]] == expected
    assert "--exclude" in report["meta"]["command"]


def test_scorer_baselines_and_selections_only(tmp_path: Path) -> None:
    """The encoder's own baselines (fixed k, threshold, largest gap) beside it, no generator."""
    from dynrag.core.encoder.model import EncoderReranker, EncoderSettings

    model = tmp_path / "encoder"
    EncoderReranker.untrained(EncoderSettings(max_length=48, max_items=4)).save(
        model, scorer_adapter=None
    )
    out = tmp_path / "report"
    args = [
        "eval",
        "--data",
        str(SHARED_DATA / "hotpotqa/hotpot_dev_distractor_val.json"),
        "--limit",
        "3",
        "--no-answers",
        "--reranker",
        str(model),
        "--selectors",
        "dynamic,scorer-k:1,2,scorer-threshold:0.5,scorer-gap,oracle",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    names = list(report["summary"])
    assert names[1:] == ["scorer-k:1", "scorer-k:2", "scorer-threshold:0.5", "scorer-gap", "oracle"]
    records = report["records"]
    assert all(r["prediction"] is None and r["f1"] is None for r in records)
    assert all(r["context_tokens"] > 0 for r in records if r["k"])
    by = {(r["selector"], r["id"]): r for r in records}
    for r in records:
        if r["selector"] == "scorer-k:2":
            assert r["k"] == 2
            assert by[("scorer-k:1", r["id"])]["selected"] == r["selected"][:1]
    assert (out / "k_by_gold.png").is_file()
    # dynamic against each baseline, paired by question, from the same records
    paired = {c["baseline"]: c for c in report["paired"]}
    assert set(paired) == set(names[1:-1])
    dyn = {r["id"]: r["sel_f1"] for r in records if r["selector"].startswith("dynamic")}
    k1 = [dyn[r["id"]] - r["sel_f1"] for r in records if r["selector"] == "scorer-k:1"]
    assert paired["scorer-k:1"]["mean_difference"] == pytest.approx(sum(k1) / 3)
    assert paired["scorer-k:1"]["wins"] == sum(d > 0 for d in k1)
    assert "paired 95% CI" in (out / "report.md").read_text()
    with pytest.raises(SystemExit, match="between 0 and 1"):
        main([*args[:-4], "--selectors", "scorer-threshold:2", "--out", str(out)])
