"""``dynrag rerank`` loses nothing: stdin/stdout, special files, bad output paths, interrupts."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dynrag.cli import main

NO_MODEL = "org-that-does-not-exist/no-such-model"


def _rows(hotpot_val: list[Any], n: int) -> list[dict[str, Any]]:
    return [{"query": ex["question"], "passages": ex["passages"]} for ex in hotpot_val[:n]]


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _dynrag(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dynrag.cli", *args], capture_output=True, text=True, **kw
    )


def test_dash_reads_stdin_and_writes_stdout(tiny_model_dir: Path, hotpot_val: list[Any]) -> None:
    rows = _rows(hotpot_val, 3)
    done = _dynrag(
        "rerank", "--model", str(tiny_model_dir), "--input", "-", "--output", "-",
        input=_jsonl(rows), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["query"] for r in out] == [r["query"] for r in rows]
    assert all("selection" in r for r in out)
    assert "wrote 3 selections" in done.stderr
    assert not Path("-").exists()


def test_a_special_file_is_written_through_not_replaced(
    tiny_model_dir: Path, tmp_path: Path, hotpot_val: list[Any]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(_jsonl(_rows(hotpot_val, 2)))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    assert (
        main(["rerank", "--model", str(tiny_model_dir), "--input", str(src), "--output", str(fifo)])
        == 0
    )
    got, _ = reader.communicate(timeout=60)
    assert len(got.splitlines()) == 2
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a pipe, not a regular file put in its place
    link = tmp_path / "link.jsonl"
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link.symlink_to(real)
    assert (
        main(["rerank", "--model", str(tiny_model_dir), "--input", str(src), "--output", str(link)])
        == 0
    )
    assert link.is_symlink()  # the link stays; the file it points to is replaced
    assert len(real.read_text().splitlines()) == 2
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the old file's mode, not mkstemp's 0600
    fresh = tmp_path / "fresh.jsonl"
    assert (
        main(
            ["rerank", "--model", str(tiny_model_dir), "--input", str(src), "--output", str(fresh)]
        )
        == 0
    )
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("kind", ["folder", "parent-is-a-file"])
def test_an_output_path_that_cannot_be_written_fails_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(_jsonl([{"query": "q", "passages": ["a"]}]))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = tmp_path if kind == "folder" else blocker / "out.jsonl"
    # the model named does not exist: the message being about the output shows it came first
    with pytest.raises(SystemExit) as exc:
        main(["rerank", "--model", NO_MODEL, "--input", str(src), "--output", str(out)])
    message = str(exc.value.code)
    assert str(out) in message
    assert len(message.splitlines()) == 1
    assert "cannot load model" not in message


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_an_interrupt_leaves_no_part_file_and_one_line(
    tiny_model_dir: Path, tmp_path: Path, hotpot_val: list[Any], sig: int, code: int, word: str
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(_jsonl(_rows(hotpot_val, 20) * 50))
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynrag.cli", "rerank", "--model", str(tiny_model_dir),
         "--input", str(src), "--output", str(out), "--batch-size", "1"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not list(tmp_path.glob(".out.jsonl.*.part")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # the model is loaded and reranking
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    # 130/143 as returned; on a fresh CI machine Python once re-raised SIGINT at exit (-2)
    assert proc.returncode in (code, -sig), err[-2000:]
    assert not list(tmp_path.glob(".*.part"))
    assert not out.exists()
    assert "Traceback" not in err
    assert f"dynrag rerank: {word}; no output written" in err.strip().splitlines()[-1]


def test_the_input_is_streamed_not_held(tiny_model_dir: Path, tmp_path: Path) -> None:
    # 4,000 lines of 25 kB: the process must not hold the 100 MB file (it held 2.5x before)
    src = tmp_path / "big.jsonl"
    passage = "word " * 5_000
    with src.open("w") as fh:
        for i in range(4_000):
            fh.write(json.dumps({"query": f"q{i}", "passages": [passage]}) + "\n")
    code = (
        "import resource, sys\n"
        "from dynrag.cli import main\n"
        f"rc = main(['rerank', '--model', {str(tiny_model_dir)!r}, '--input', {str(src)!r}, "
        f"'--output', {str(tmp_path / 'out.jsonl')!r}, '--max-passage-tokens', '8'])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mb = int(done.stdout.split()[-1])
    baseline = subprocess.run(
        [sys.executable, "-c", "import resource, dynrag.cli, torch, transformers\n"
         "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert peak_mb - int(baseline.stdout.split()[-1]) < 200, (peak_mb, baseline.stdout)
    assert sum(1 for _ in (tmp_path / "out.jsonl").open()) == 4_000


def test_an_option_the_family_does_not_take_is_one_line(tmp_path: Path) -> None:
    # Issue 34 item 10: --max-passage-tokens with the default (encoder) model was a 22-line
    # TypeError
    src = tmp_path / "in.jsonl"
    src.write_text(_jsonl([{"query": "q", "passages": ["a"]}]))
    argv = ["rerank", "--input", str(src), "--output", str(tmp_path / "o.jsonl")]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--max-passage-tokens", "100"])
    message = str(exc.value.code)
    assert message.startswith("cannot load model 'dynrag-minilm-cut'")
    assert "max_passage_tokens" in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "o.jsonl").exists()
    assert not list(tmp_path.glob(".o.jsonl.*"))


def test_dev_stdout_redirected_to_a_file_is_appended_not_replaced(
    tiny_model_dir: Path, tmp_path: Path, hotpot_val: list[Any]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(_jsonl(_rows(hotpot_val, 2)))
    log = tmp_path / "all.jsonl"
    log.write_text("earlier\n")
    argv = [
        "rerank",
        "--model",
        str(tiny_model_dir),
        "--input",
        str(src),
        "--output",
        "/dev/stdout",
    ]
    with log.open("a") as out:
        done = subprocess.run(
            [sys.executable, "-m", "dynrag.cli", *argv],
            stdout=out, stderr=subprocess.PIPE, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier"  # kept: >> was not turned into a replacement
    assert len(lines) == 3


def test_a_pipe_as_input_is_read_once(tiny_model_dir: Path, hotpot_val: list[Any]) -> None:
    # --input <(zcat x.gz) is /dev/fd/N: a checking pass used it up and 0 lines were written
    rows = _rows(hotpot_val, 2)
    code = (
        "import os, sys\n"
        "from dynrag.cli import main\n"
        "r, w = os.pipe()\n"
        f"os.write(w, {_jsonl(rows).encode()!r}); os.close(w)\n"
        f"sys.exit(main(['rerank', '--model', {str(tiny_model_dir)!r}, '--input', "
        "f'/dev/fd/{r}', '--output', '-']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(done.stdout.splitlines()) == 2
