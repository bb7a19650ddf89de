"""JSONL writers survive a kill: a resumed writer never glues a record onto a torn line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from dynrag.data.jsonl import append_jsonl, cut_torn_tail, read_jsonl


def test_appending_after_a_torn_line_keeps_every_record(tmp_path: Path) -> None:
    path = tmp_path / "rewards.jsonl"
    append_jsonl(path, [{"id": str(i), "r": i} for i in range(11)])
    with path.open("a", encoding="utf-8") as fh:  # what a kill mid-line leaves
        fh.write('{"id": "11", "r": 0.5, "samp')
    append_jsonl(path, [{"id": "11", "r": 11}, {"id": "12", "r": 12}])
    rows = list(read_jsonl(path))
    assert [r["id"] for r in rows] == [str(i) for i in range(13)]
    assert all(line.startswith("{") for line in path.read_text().splitlines())


def test_cut_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    assert cut_torn_tail(path) == 0  # no file
    path.write_text('{"a": 1}\n')
    assert cut_torn_tail(path) == 0
    path.write_text('{"a": 1}\n{"b"')
    assert cut_torn_tail(path) == 4
    assert path.read_text() == '{"a": 1}\n'
    path.write_text("x" * 200_000)  # one torn line longer than a chunk, nothing before it
    assert cut_torn_tail(path) == 200_000
    assert path.read_text() == ""


WRITER = """
import sys
from dynrag.data.jsonl import append_jsonl
path, start = sys.argv[1], int(sys.argv[2])
i = start
while True:
    append_jsonl(path, [{"id": f"{start}-{i}", "pad": "x" * 100_000}])
    i += 1
"""


def test_a_writer_killed_mid_write_resumes_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    for start in (0, 1):  # kill, resume, kill again
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(start)])
        time.sleep(0.7)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    append_jsonl(path, [{"id": "last", "pad": ""}])
    rows = list(read_jsonl(path))
    assert rows[-1]["id"] == "last"
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) > 2
    for line in path.read_text().splitlines():
        assert json.loads(line)["id"]  # every line is one whole record


def test_every_jsonl_writer_reads_back_after_a_torn_line(tmp_path: Path) -> None:
    # the eval generation cache crashed on a torn last line; the reward cache glued records
    from dynrag.eval.runner import GenerationCache

    path = tmp_path / "generations.jsonl"
    cache = GenerationCache(path)
    cache.put("a", answer="x")
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"key": "b", "ans')  # a run killed mid-write
    again = GenerationCache(path)  # reads what is whole
    assert again.get("a") == {"key": "a", "answer": "x"}
    assert again.get("b") is None
    again.put("b", answer="y")
    assert GenerationCache(path).get("b") == {"key": "b", "answer": "y"}
    assert [r["key"] for r in read_jsonl(path)] == ["a", "b"]


def test_unicode_line_breaks_and_a_cut_character_survive(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    append_jsonl(path, [{"id": "1", "text": "a\u2028b\u2029c\x85d é"}])
    assert next(read_jsonl(path))["text"] == "a\u2028b\u2029c\x85d é"
    with path.open("ab") as fh:
        fh.write(b'{"id": "2", "text": "caf' + "é".encode()[:1])  # cut mid-character
    assert [r["id"] for r in read_jsonl(path)] == ["1"]  # the torn line is skipped
    append_jsonl(path, [{"id": "2", "text": "ok"}])
    assert [r["id"] for r in read_jsonl(path)] == ["1", "2"]
    with path.open("a") as fh:
        fh.write('{"id": "3"}')  # complete JSON but no newline: torn, recomputed
    assert [r["id"] for r in read_jsonl(path)] == ["1", "2"]
