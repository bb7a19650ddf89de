"""``dynrag rerank``: rerank each line of a JSONL file (or stdin) and write it with its selection.

Nothing is lost and nothing is unbounded:

- The input is streamed, a batch at a time, so memory follows the batch, not the file. A regular
  file is read twice: once to check every line before the model loads (a bad line is one line
  naming the file and line, and no output is written), then to rerank it. Standard input
  (``-``), a pipe or ``/dev/fd/N`` is read once; a bad line stops the run where it stands.
- The output path is checked before the model loads. A regular file is written to a temporary
  file beside it and renamed into place when complete (through a symbolic link, onto the file it
  points to), so a failure or an interrupt leaves the old file or none; the new file gets the
  old one's mode (else the umask's). Standard output (``-``, ``/dev/stdout`` even when
  redirected to a file), a pipe or a device is written through, line by line.
- SIGTERM and Ctrl-C remove the temporary file and end with one line (exit status 143 or 130).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from dynrag.model_options import check_policy, load_reranker

__all__ = ["cmd_rerank", "selection_record"]

STDIO = "-"
"""``--input -`` reads standard input, ``--output -`` writes standard output."""


def _lines(source: IO[bytes], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON objects of ``source`` with their line numbers; any problem is one line."""
    for number, raw in enumerate(source, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SystemExit(f"{name}:{number}: not UTF-8 text") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise SystemExit(f"{name}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise SystemExit(f"{name}:{number}: expected a JSON object")
        yield number, record


@contextlib.contextmanager
def _open_input(path: str) -> Iterator[IO[bytes]]:
    if path == STDIO:
        yield sys.stdin.buffer
        return
    try:  # only opening is reported here, not what the caller's body raises
        handle = Path(path).open("rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SystemExit(f"{path}: a folder, not a JSONL file") from None
    except OSError as err:
        raise SystemExit(f"{path}: cannot be read ({err.strerror})") from None
    with handle:
        yield handle


def query_and_passages(name: str, number: int, record: dict[str, Any]) -> tuple[str, list[Any]]:
    """A line's query and passages, every passage checked; a bad one names its line."""
    from dynrag.core.interface import check_query
    from dynrag.core.types import to_passages

    query = record.get("query", record.get("question"))
    passages = record.get("passages", record.get("ctxs", record.get("docs")))
    if not isinstance(query, str) or not isinstance(passages, list):
        msg = (
            f"{name}:{number}: expected {{'query', 'passages': [...]}} or "
            "{'question', 'ctxs': [{'title', 'text'}]}"
        )
        raise SystemExit(msg)
    try:
        check_query(query)
        to_passages(passages)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"{name}:{number}: {err}") from None
    return query, passages


def _is_stdout(path: str) -> bool:
    """Whether ``path`` is this process's standard output, to write through, never replace.

    ``/dev/stdout``, ``/proc/self/fd/1``, or the file standard output is redirected to.
    """
    try:
        out, target = os.fstat(sys.stdout.fileno()), os.stat(path)
    except (OSError, ValueError):
        return False
    return (out.st_dev, out.st_ino) == (target.st_dev, target.st_ino)


def _read_twice(path: str) -> bool:
    """Whether ``path`` is checked in a first pass: not stdin, a pipe, a device or a socket.

    ``/dev/fd/N`` of a pipe is used up by one read. A path that is missing or a folder is
    checked, so that the check names it before the model loads.
    """
    if path == STDIO:
        return False
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True
    return not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode))


class _Output:
    """Where selections go: a temporary file renamed into place, or written through."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp: Path | None = None
        self.target: Path | None = None
        self.handle: IO[str]
        if path == STDIO or _is_stdout(path):  # /dev/stdout redirected to a file is stdout
            self.handle = sys.stdout
            return
        given = Path(path)
        if given.is_dir():
            raise SystemExit(f"{path}: a folder; give a file to write")
        special = str(given.resolve()).startswith(("/dev/", "/proc/"))
        if given.exists() and (special or not given.resolve().is_file()):  # write through
            try:
                self.handle = given.open("w", encoding="utf-8")
            except OSError as err:
                raise SystemExit(f"{path}: cannot be written ({err.strerror})") from None
            return
        target = given.resolve()  # through a symbolic link: replace the file it points to
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        except OSError as err:
            raise SystemExit(f"{path}: cannot be written ({err.strerror or err})") from None
        self.tmp, self.target = Path(tmp), target
        self.handle = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.tmp is None:
            self.handle.flush()  # a pipe's reader sees each line as it is done

    def commit(self) -> None:
        """Put the complete output in place (the old file's mode kept, else the umask's)."""
        if self.tmp is None or self.target is None:
            if self.handle is not sys.stdout:
                self.handle.close()
            return
        self.handle.close()
        if self.target.exists():
            mode = stat.S_IMODE(self.target.stat().st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(self.tmp, mode)
        os.replace(self.tmp, self.target)
        self.tmp = None

    def discard(self) -> None:
        """Remove the temporary file (an error or an interrupt: nothing half written stays)."""
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.handle.close()
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


class _Terminated(Exception):
    """SIGTERM arrived."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def selection_record(sel: Any, batch_seconds: float, batch_queries: int) -> dict[str, Any]:
    """A selection as written by ``dynrag rerank``.

    The queries of one batch are generated together, so their time is the batch's: written as
    ``batch_seconds`` with ``batch_queries`` (not as a per-query time that every line repeats).
    """
    record: dict[str, Any] = sel.model_dump(mode="json", exclude={"passages", "rerank_seconds"})
    record["batch_seconds"] = round(batch_seconds, 4)
    record["batch_queries"] = batch_queries
    return record


def _rerank(args: argparse.Namespace, out: _Output) -> int:
    from tqdm.auto import tqdm

    name = "<stdin>" if args.input == STDIO else args.input
    if _read_twice(args.input):  # check every line before the model loads; keep none of them
        with _open_input(args.input) as source:
            for number, record in _lines(source, name):
                query_and_passages(name, number, record)
    check_policy(args)
    reranker = load_reranker(args)
    step = args.batch_size or 8
    written = 0
    with _open_input(args.input) as source, tqdm(desc="rerank", unit="q") as bar:
        batch: list[tuple[int, dict[str, Any], str, list[Any]]] = []

        def flush() -> None:
            began = time.perf_counter()
            try:
                selections = reranker.rerank_batch([b[2] for b in batch], [b[3] for b in batch])
            except (TypeError, ValueError) as err:  # checked above; a model-side refusal
                raise SystemExit(f"{name}:{batch[0][0]}-{batch[-1][0]}: {err}") from None
            seconds = time.perf_counter() - began
            for (_, record, _, _), sel in zip(batch, selections, strict=True):
                record["selection"] = selection_record(sel, seconds, len(batch))
                out.write(record)
            bar.update(len(batch))
            batch.clear()

        for number, record in _lines(source, name):
            query, passages = query_and_passages(name, number, record)
            batch.append((number, record, query, passages))
            written += 1
            if len(batch) == step:
                flush()
        if batch:
            flush()
    out.commit()
    print(f"wrote {written} selections to {args.output}", file=sys.stderr)
    return 0


def cmd_rerank(args: argparse.Namespace) -> int:
    """Rerank every line of a JSONL file (``-``: stdin) and write each with its selection."""
    args.input, args.output = str(args.input), str(args.output)
    out = _Output(args.output)  # before the model loads: a path that cannot be written fails now
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return _rerank(args, out)
    except (_Terminated, KeyboardInterrupt) as stop:
        kept = "no output written" if out.tmp is not None else "output cut short"
        out.discard()
        what = "terminated" if isinstance(stop, _Terminated) else "interrupted"
        print(f"dynrag rerank: {what}; {kept}", file=sys.stderr)
        return 143 if isinstance(stop, _Terminated) else 130
    except BaseException:
        out.discard()
        raise
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
