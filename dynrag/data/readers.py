"""Readers for multi-hop QA files with candidate passages, in their original formats.

Formats (auto-detected from the first record, or named):

- ``hotpotqa``: HotpotQA / 2WikiMultihopQA records ``{"question", "answer", "supporting_facts",
  "context": [[title, [sentence, ...]], ...]}``, as a JSON list or one object a line. A passage is
  gold when its title is in ``supporting_facts``; its text is its sentences joined.
- ``musique``: MuSiQue records ``{"question", "answer", "answer_aliases", "paragraphs":
  [{"title", "paragraph_text", "is_supporting"}]}``.
- ``ctxs``: DynamicRAG / Self-RAG / FiD evaluation records ``{"question", "answers",
  "ctxs": [{"title", "text"}]}`` (``docs`` instead of ``ctxs`` for ASQA). No gold passages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dynrag.core.types import Passage
from dynrag.data.examples import QAExample

logger = logging.getLogger(__name__)

__all__ = ["FORMATS", "detect_format", "drop_questions_in", "read_examples"]

FORMATS = ("hotpotqa", "2wikimultihopqa", "musique", "ctxs")
"""Names accepted by ``format=`` (``2wikimultihopqa`` reads like ``hotpotqa``)."""


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) pairs of a JSON list or a JSONL file."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            msg = f"{path}:{err.lineno}: not valid JSON ({err.msg})"
            raise ValueError(msg) from None
        # A JSON list has no line per record; number records from 1 instead.
        yield from enumerate(data, start=1)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            msg = f"{path}:{number}: not valid JSON ({err.msg})"
            raise ValueError(msg) from None


def detect_format(record: Any) -> str:
    """The format of one record (see the module docstring).

    Raises:
        ValueError: a record of no known format.
    """
    if isinstance(record, dict):
        if "paragraphs" in record:
            return "musique"
        if "context" in record and "supporting_facts" in record:
            return "hotpotqa"
        if "ctxs" in record or "docs" in record:
            return "ctxs"
    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
    msg = f"unknown record format (keys: {keys}); use one of {', '.join(FORMATS)}"
    raise ValueError(msg)


def _answers(*values: Any) -> list[str]:
    """Gold answers from strings, numbers and (nested) lists of them, without duplicates."""
    answers: list[str] = []
    stack = list(reversed(values))
    while stack:
        item = stack.pop()
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            answers.append(str(item))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
    return list(dict.fromkeys(a for a in answers if a.strip()))


def _id(record: dict[str, Any], *fields: str) -> str:
    """The first of ``fields`` that holds a value ("" when none does: the caller numbers it).

    A null id (119 records of the shared 2WikiMultihopQA file have ``"_id": null``) is no id, not
    the string "None" that would make those questions share one.
    """
    for field in fields:
        value = record.get(field)
        if value is not None and str(value).strip():
            return str(value)
    return ""


def _hotpot(record: dict[str, Any]) -> QAExample:
    gold_titles = {fact[0] for fact in record["supporting_facts"]}
    passages = [
        Passage(title=title, text="".join(sentences).strip())
        for title, sentences in record["context"]
    ]
    return QAExample(
        id=_id(record, "_id", "id"),
        question=record["question"],
        answers=_answers(record["answer"], record.get("answer_aliases")),
        passages=passages,
        gold=[i for i, p in enumerate(passages) if p.title in gold_titles],
    )


def _musique(record: dict[str, Any]) -> QAExample:
    paragraphs = record["paragraphs"]
    return QAExample(
        id=_id(record, "id"),
        question=record["question"],
        answers=_answers(record["answer"], record.get("answer_aliases")),
        passages=[Passage(title=p.get("title"), text=p["paragraph_text"]) for p in paragraphs],
        gold=[i for i, p in enumerate(paragraphs) if p.get("is_supporting")],
    )


def _ctxs(record: dict[str, Any]) -> QAExample:
    contexts = record.get("ctxs", record.get("docs"))
    if not isinstance(contexts, list):
        msg = "'ctxs' (or 'docs') must be a list"
        raise ValueError(msg)
    answers = _answers(record.get("answers"), record.get("answer"))
    return QAExample(
        id=_id(record, "id", "_id"),
        question=record["question"],
        answers=answers,
        passages=[Passage(title=c.get("title"), text=c["text"]) for c in contexts],
    )


_READERS = {"hotpotqa": _hotpot, "2wikimultihopqa": _hotpot, "musique": _musique, "ctxs": _ctxs}


def read_examples(
    path: str | Path, format: str | None = None, limit: int | None = None
) -> list[QAExample]:
    """Read a data file into `QAExample` objects.

    Args:
        path: A JSON list or JSONL file.
        format: One of `FORMATS`; detected from the first record when None.
        limit: Read only the first ``limit`` records.

    Every example gets an id unique in the file: a record without one (or with a null one) is
    named ``<file name>:<line or index>``, and a repeated id gets ``#<file name>:<line>`` appended
    (one warning per file says how many). Unique within one file only: `dynrag-train` makes the
    ids of its several training files unique across them.

    Raises:
        ValueError: an unknown format, or a malformed record (the file and line are named).
    """
    path = Path(path)
    if format is not None and format not in _READERS:
        msg = f"unknown format {format!r}; use one of {', '.join(FORMATS)}"
        raise ValueError(msg)
    examples: list[QAExample] = []
    seen: set[str] = set()
    repeated: list[str] = []
    for number, record in _records(path):
        if limit is not None and len(examples) >= limit:
            break
        try:
            fmt = format or detect_format(record)
            example = _READERS[fmt](record)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            what = f"missing field {err}" if isinstance(err, KeyError) else str(err)
            msg = f"{path}:{number}: malformed record: {what}"
            raise ValueError(msg) from None
        if not example.id:
            example.id = f"{path.name}:{number}"
        elif example.id in seen:
            repeated.append(example.id)
            example.id = f"{example.id}#{path.name}:{number}"
        seen.add(example.id)
        examples.append(example)
    if repeated:
        logger.warning(
            "%s: %d records repeat an id used before in the file (first: %r); each is named "
            "'<id>#%s:<line>' instead",
            path,
            len(repeated),
            repeated[0],
            path.name,
        )
    return examples


def drop_questions_in(
    examples: list[QAExample], paths: Sequence[str | Path]
) -> tuple[list[QAExample], int]:
    """``examples`` without the questions that also appear in any of ``paths``.

    Questions match on their normalised text (`dynrag.data.examples.normalize_answer`), so the
    same question in another format or file still matches. Returns the kept examples and how
    many were dropped.
    """
    from dynrag.data.examples import normalize_answer

    seen: set[str] = set()
    for path in paths:
        seen.update(normalize_answer(e.question) for e in read_examples(path))
    kept = [e for e in examples if normalize_answer(e.question) not in seen]
    return kept, len(examples) - len(kept)
