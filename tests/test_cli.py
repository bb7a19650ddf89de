from __future__ import annotations

import json
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
    proc = subprocess.run(
        [script, "demo", "--limit", "1"], capture_output=True, text=True, check=True, timeout=600
    )
    assert "model 'dynrag-smollm2-135m'" in proc.stdout
    assert "summary:" in proc.stdout


def test_cli_runs_a_trained_model_with_its_own_settings(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from dynrag.cli import _load, build_parser
    from dynrag.core.loading import ModelConfig

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "trained"))
    ModelConfig(max_k=3, max_passage_tokens=40, presort="bm25").write(folder)
    parser = build_parser()
    rr = _load(
        parser.parse_args(["rerank", "--model", str(folder), "--input", "i", "--output", "o"])
    )
    assert (rr.policy.max_k, rr.max_passage_tokens, rr.presort) == (3, 40, "bm25")
    args = ["rerank", "--model", str(folder), "--input", "i", "--output", "o", "--max-k", "5"]
    args += ["--max-passage-tokens", "100", "--presort", "none", "--no-empty"]
    rr = _load(parser.parse_args(args))
    assert (rr.policy.max_k, rr.max_passage_tokens, rr.presort) == (5, 100, None)
    assert not rr.policy.allow_empty
    untrained = _load(
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
