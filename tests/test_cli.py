from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dynrag.cli import main


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_rerank_reads_both_input_shapes(
    tiny_model_dir: Path, tmp_path: Path, hotpot_val: list[Any]
) -> None:
    ex = hotpot_val[0]
    rows = [
        {"query": ex["question"], "passages": ex["passages"], "id": "keep-me"},
        {"question": "who?", "ctxs": [{"title": "A", "text": "a"}, {"title": "B", "text": "b"}]},
        {"query": "nothing to choose from", "passages": []},
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out" / "sel.jsonl"
    code = main(
        [
            "rerank",
            "--model",
            str(tiny_model_dir),
            "--input",
            str(src),
            "--output",
            str(out),
            "--min-k",
            "1",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line.get("id") for line in lines] == ["keep-me", None, None]
    first, second, third = (line["selection"] for line in lines)
    assert 1 <= first["k"] == len(first["indices"])
    assert all(0 <= i < 10 for i in first["indices"])
    assert all(0 <= i < 2 for i in second["indices"])
    assert third["indices"] == []


def test_rerank_names_file_and_line_of_bad_input(tiny_model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"query": "q", "passages": ["a"]}\n{not json\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=r"bad.jsonl:2"):
        main(
            [
                "rerank",
                "--model",
                str(tiny_model_dir),
                "--input",
                str(src),
                "--output",
                str(tmp_path / "o.jsonl"),
            ]
        )
    src.write_text('{"query": "q", "passages": ["a", 5]}\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=r"bad.jsonl:1: passage 1"):
        main(
            [
                "rerank",
                "--model",
                str(tiny_model_dir),
                "--input",
                str(src),
                "--output",
                str(tmp_path / "o.jsonl"),
            ]
        )


def test_demo_prints_titles_choices_and_gold(tiny_model_dir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dynrag.cli",
            "demo",
            "--model",
            str(tiny_model_dir),
            "--limit",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    out = proc.stdout
    assert out.count("gold:") == 2
    assert "chosen:" in out
    assert "Derek Jacobi" in out  # a candidate title of the first demo question
    assert "summary:" in out


@pytest.mark.slow
def test_demo_on_the_default_model_runs_as_in_the_readme() -> None:
    # The console script installed beside this interpreter, as the README runs it.
    script = shutil.which("dynrag") or str(Path(sys.executable).parent / "dynrag")
    proc = subprocess.run([script, "demo"], capture_output=True, text=True, check=True, timeout=600)
    assert "model 'dynrag-minilm-cut'" in proc.stdout
    assert "summary:" in proc.stdout
    ks = {int(m) for m in re.findall(r"\(k=(\d+), status=", proc.stdout)}
    assert len(ks) > 1, proc.stdout  # k varies with the question
    assert "why k=" in proc.stdout


def test_cli_runs_a_trained_model_with_its_own_settings(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from dynrag.cli import build_parser
    from dynrag.core.loading import ModelConfig
    from dynrag.model_options import load_reranker

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "trained"))
    ModelConfig(max_k=3, max_passage_tokens=40, presort="bm25").write(folder)
    parser = build_parser()
    rr = load_reranker(
        parser.parse_args(["rerank", "--model", str(folder), "--input", "i", "--output", "o"])
    )
    assert (rr.policy.max_k, rr.max_passage_tokens, rr.presort) == (3, 40, "bm25")
    args = ["rerank", "--model", str(folder), "--input", "i", "--output", "o", "--max-k", "5"]
    args += ["--max-passage-tokens", "100", "--presort", "none", "--no-empty"]
    rr = load_reranker(parser.parse_args(args))
    assert (rr.policy.max_k, rr.max_passage_tokens, rr.presort) == (5, 100, None)
    assert not rr.policy.allow_empty
    untrained = load_reranker(
        parser.parse_args(
            ["rerank", "--model", str(tiny_model_dir), "--input", "i", "--output", "o"]
        )
    )
    assert (untrained.policy.max_k, untrained.max_passage_tokens, untrained.presort) == (
        None,
        256,
        None,
    )


def test_eval_labels_two_runs_checkpoints_apart(tmp_path: Path) -> None:
    from dynrag.cli import model_labels

    first, second = (
        tmp_path / "run-a" / "bc" / "checkpoint",
        tmp_path / "run-b" / "bc" / "checkpoint",
    )
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    dpo = tmp_path / "run-a" / "dpo" / "checkpoint"
    dpo.mkdir(parents=True)
    assert model_labels([str(first), str(dpo), "dynrag-smollm2-135m"]) == [
        "bc/checkpoint",
        "dpo/checkpoint",
        "dynrag-smollm2-135m",
    ]
    assert model_labels([str(first), str(second)]) == [
        "run-a/bc/checkpoint",
        "run-b/bc/checkpoint",
    ]
    with pytest.raises(ValueError, match="given twice"):
        model_labels([str(first), f"{first}/"])


# -- usage errors are one line, before the model loads (issue 19, items 10-12, 16) ----------

NO_MODEL = "nobody/no-such-dynrag-model"  # a hub id that cannot be fetched offline


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The message of a usage error: exactly one line, never a traceback."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    code = exc.value.code
    message = capsys.readouterr().err.strip() if code == 2 else str(code)
    assert message
    assert len(message.splitlines()) == 1, message
    assert "Traceback" not in message
    return message


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def rerank_args(src: Path, out: Path, *extra: str, model: str = NO_MODEL) -> list[str]:
    return ["rerank", "--model", model, "--input", str(src), "--output", str(out), *extra]


def test_input_errors_are_one_line_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offline: None
) -> None:
    # The model cannot be loaded at all: each message naming the input shows that the input
    # was checked first.
    out = tmp_path / "out.jsonl"
    missing = one_line_error(rerank_args(tmp_path / "missing.jsonl", out), capsys)
    assert "missing.jsonl: no such file" in missing
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"query": "q", "passages": ["a"]}\n{"query": "caf\xe9", "passages": []}\n')
    assert "latin.jsonl:2: not UTF-8 text" in one_line_error(rerank_args(latin, out), capsys)
    rows = [{"query": f"q{i}", "passages": ["a", "b"]} for i in range(9)]
    rows.append({"query": "q9", "passages": ["a", 5]})
    ten = write_jsonl(tmp_path / "ten.jsonl", rows)
    message = one_line_error(rerank_args(ten, out), capsys)
    assert "ten.jsonl:10: passage 1 is of type int" in message
    blank = write_jsonl(tmp_path / "blank.jsonl", [{"query": " ", "passages": ["a"]}])
    assert "blank.jsonl:1: query is empty" in one_line_error(rerank_args(blank, out), capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--max-k", "-1"], "argument --max-k: must be at least 0, got -1"),
        (["--min-k", "x"], "argument --min-k: expected a whole number, got 'x'"),
        (["--min-k", "3", "--max-k", "2"], "--min-k (3) is larger than --max-k (2)"),
        (["--batch-size", "0"], "argument --batch-size: must be at least 1"),
    ],
)
def test_bad_options_are_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    offline: None,
    extra: list[str],
    expected: str,
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"query": "q", "passages": ["a"]}])
    assert expected in one_line_error(rerank_args(src, tmp_path / "o.jsonl", *extra), capsys)


def test_min_k_above_the_models_own_max_k_says_so(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dynrag.core.loading import ModelConfig

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "trained"))
    ModelConfig(max_k=4).write(folder)
    src = write_jsonl(tmp_path / "in.jsonl", [{"query": "q", "passages": ["a"]}])
    args = rerank_args(src, tmp_path / "o.jsonl", "--min-k", "5", model=str(folder))
    message = one_line_error(args, capsys)
    assert "--min-k (5) is larger than max_k (4) (the model's own max_k is 4" in message
    assert "give --max-k to lift it" in message


def test_unreachable_hub_id_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offline: None
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"query": "q", "passages": ["a"]}])
    message = one_line_error(rerank_args(src, tmp_path / "o.jsonl"), capsys)
    assert f"cannot load model {NO_MODEL!r}" in message
    assert "HF_HUB_OFFLINE" in message


def test_rerank_names_the_batch_time_as_the_batch_and_the_read_order(
    tiny_model_dir: Path, tmp_path: Path, hotpot_val: list[Any]
) -> None:
    rows = [{"query": ex["question"], "passages": ex["passages"]} for ex in hotpot_val[:3]]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    args = ["--batch-size", "2", "--presort", "bm25", "--max-passage-tokens", "32"]
    assert main(rerank_args(src, out, *args, model=str(tiny_model_dir))) == 0
    selections = [json.loads(line)["selection"] for line in out.read_text().splitlines()]
    assert [s["batch_queries"] for s in selections] == [2, 2, 1]
    assert all("rerank_seconds" not in s and s["batch_seconds"] > 0 for s in selections)
    for sel in selections:  # raw_output ids number the presorted order the model read
        assert sorted(sel["shown_order"]) == list(range(10))
    assert not list(tmp_path.glob(".out.jsonl.*"))  # the temporary file was renamed


def test_demo_says_which_order_the_models_ids_number(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--model", str(tiny_model_dir), "--limit", "1", "--presort", "bm25"]
    assert main([*args, "--max-passage-tokens", "32"]) == 0
    assert "its ids number the presorted order it read: [1] = [" in capsys.readouterr().out


def test_every_policy_option_has_a_flag(tiny_model_dir: Path) -> None:
    from dynrag.cli import build_parser
    from dynrag.core.policy import POLICY_FIELDS
    from dynrag.model_options import load_reranker

    argv = ["rerank", "--model", str(tiny_model_dir), "--input", "i", "--output", "o"]
    argv += ["--min-k", "1", "--max-k", "3", "--no-empty", "--fallback-k", "2"]
    argv += ["--token-budget", "50"]
    policy = load_reranker(build_parser().parse_args(argv)).policy
    assert policy.model_dump() == {
        "min_k": 1,
        "max_k": 3,
        "allow_empty": False,
        "fallback_k": 2,
        "token_budget": 50,
    }
    assert set(policy.model_dump()) == set(POLICY_FIELDS)
