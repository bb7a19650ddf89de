"""JSON Lines files that survive a killed writer: every record is a whole line or is not there.

A writer killed mid-line leaves a torn last line. Readers skip it (`read_jsonl`, with a warning);
writers cut it off before appending (`appending`), so a resumed stage or cache never glues a new
record onto half an old one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

__all__ = ["append_jsonl", "appending", "cut_torn_tail", "read_jsonl"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 16


def cut_torn_tail(path: Path) -> int:
    """Cut ``path`` back to its last complete line; returns the bytes removed (0: none torn)."""
    if not Path(path).is_file():
        return 0
    with Path(path).open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        end = size
        keep = 0
        while end > 0:  # the last newline, read backwards in chunks
            start = max(0, end - _CHUNK)
            handle.seek(start)
            found = handle.read(end - start).rfind(b"\n")
            if found >= 0:
                keep = start + found + 1
                break
            end = start
        handle.truncate(keep)
    logger.warning("%s: cut a torn last line of %d bytes (interrupted write)", path, size - keep)
    return size - keep


@contextmanager
def appending(path: Path) -> Iterator[TextIO]:
    """``path`` opened to append lines, its torn tail (if any) cut first; parents created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cut_torn_tail(path)
    with path.open("a", encoding="utf-8") as handle:
        yield handle


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Append records, one line each, flushed (a kill leaves whole lines, or a torn last one)."""
    with appending(path) as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")  # ASCII: no U+2028 inside a line
        handle.flush()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    r"""Records of a JSONL file; a torn last line (from a killed writer) is skipped with a warning.

    Lines end at ``\n`` only (not at U+2028 or other Unicode line breaks). A last line without
    its ``\n`` is torn, whatever it holds: `appending` cuts it off, so it is recomputed.

    Raises:
        ValueError: a malformed line other than a torn last one (file and line are named).
    """
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with its newline
    if torn.strip():
        logger.warning(
            "%s:%d: incomplete last line skipped (interrupted write)", path, len(lines) + 1
        )
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            reason = err.msg if isinstance(err, json.JSONDecodeError) else "not UTF-8"
            msg = f"{path}:{number}: invalid JSON: {reason}"
            raise ValueError(msg) from None
