"""In-house feedback logs: the record schema, validation, preference pairs, and their settings.

One JSON object per line (`FeedbackRecord`)::

    {"query": "...", "passages": [{"title": "...", "text": "..."}, "or plain text", ...],
     "selection": [2, 0], "answer": "...", "rating": 0.8}
    {"query": "...", "passages": [...], "preferred": [1], "rejected": [0, 3]}

Positions are 0-based, as in `dynrag.core.Selection.indices`. `FeedbackLogs` is what the
``feedback`` and ``encoder-feedback`` sections share: which files to read, and the rating gap a
pair needs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from dynrag.core.types import Passage, to_passages

__all__ = ["FeedbackLogs", "FeedbackPair", "FeedbackRecord", "feedback_pairs", "read_feedback"]

logger = logging.getLogger(__name__)

_Position = Annotated[int, Strict()]
"""A 0-based position: a JSON integer only (not ``true``, not ``"0"``, not ``1.0``)."""
_Rating = Annotated[float, Strict(), Field(ge=0.0, le=1.0)]
"""A rating: a JSON number in [0, 1] (not ``true``, not ``"0.8"``)."""


class FeedbackRecord(BaseModel):
    """One logged interaction: a query, its candidates, what was shown and how it was judged."""

    model_config = ConfigDict(extra="allow")

    query: StrictStr = Field(min_length=1, description="The user's question (not blank).")
    passages: list[Passage] = Field(min_length=1, description="The candidates, in the order shown.")
    selection: list[_Position] | None = Field(
        default=None, description="0-based positions the reranker selected (what was shown)."
    )
    answer: StrictStr | None = Field(default=None, description="The answer the user saw.")
    rating: _Rating | None = Field(default=None, description="How good the answer was, in [0, 1].")
    preferred: list[_Position] | None = Field(
        default=None, description="A better selection (0-based), e.g. from an annotator."
    )
    rejected: list[_Position] | None = Field(
        default=None, description="A worse selection (0-based)."
    )

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            msg = "query is blank"
            raise ValueError(msg)
        return value

    @model_validator(mode="before")
    @classmethod
    def _passages(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("passages"), list):
            data = dict(data)
            try:
                data["passages"] = to_passages(data["passages"])
            except TypeError as err:  # pydantic reports ValueErrors with the record's line
                raise ValueError(str(err)) from None
        return data

    @model_validator(mode="after")
    def _check(self) -> FeedbackRecord:
        n = len(self.passages)
        for name in ("selection", "preferred", "rejected"):
            ids = getattr(self, name)
            if ids is None:
                continue
            bad = [i for i in ids if not 0 <= i < n]
            if bad:
                msg = f"{name} has positions {bad} outside 0..{n - 1}"
                raise ValueError(msg)
            if len(set(ids)) != len(ids):
                msg = f"{name} repeats a position: {ids}"
                raise ValueError(msg)
        if (self.preferred is None) != (self.rejected is None):
            msg = "give both preferred and rejected, or neither"
            raise ValueError(msg)
        if self.preferred is not None and self.preferred == self.rejected:
            msg = "preferred and rejected are the same selection"
            raise ValueError(msg)
        if self.preferred is None and self.rating is None:
            msg = "a record needs a rating (with its selection) or a preferred/rejected pair"
            raise ValueError(msg)
        if self.rating is not None and self.selection is None:
            msg = "a rating needs the selection it rates"
            raise ValueError(msg)
        return self

    def group_key(self) -> str:
        """Records with the same query and candidates are compared with each other."""
        blob = json.dumps([self.query, [[p.title, p.text] for p in self.passages]])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class FeedbackPair(BaseModel):
    """A preference between two selections of one query's candidates."""

    query: str
    passages: list[Passage]
    chosen: list[int]
    rejected: list[int]
    source: str


def read_feedback(path: str | Path) -> list[FeedbackRecord]:
    """Read and validate a feedback JSONL file.

    Raises:
        ValueError: a folder, text that is not UTF-8, or a record that is not JSON or breaks the
            schema (file and line are named).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if path.is_dir():
        msg = f"{path}: a folder, not a feedback JSONL file"
        raise ValueError(msg)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        where = path.read_bytes()[: err.start].count(b"\n") + 1
        msg = f"{path}:{where}: not UTF-8 text"
        raise ValueError(msg) from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(FeedbackRecord.model_validate_json(line))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'record'}: {e['msg']}"
                for e in err.errors()
            )
            msg = f"{path}:{number}: invalid feedback record: {problems}"
            raise ValueError(msg) from None
    if not records:
        msg = f"{path}: no feedback records"
        raise ValueError(msg)
    return records


def feedback_pairs(records: list[FeedbackRecord], rating_margin: float = 0.0) -> list[FeedbackPair]:
    """Preference pairs from feedback records.

    Each explicit preferred/rejected record is a pair; for every query with rated selections,
    the best-rated against the worst-rated when their ratings differ by more than
    ``rating_margin`` (equal ratings and identical selections give no pair).
    """
    pairs: list[FeedbackPair] = []
    rated: dict[str, list[FeedbackRecord]] = defaultdict(list)
    for i, r in enumerate(records):
        if r.preferred is not None and r.rejected is not None:
            pairs.append(
                FeedbackPair(
                    query=r.query,
                    passages=r.passages,
                    chosen=r.preferred,
                    rejected=r.rejected,
                    source=f"record {i + 1}: preferred/rejected",
                )
            )
        if r.rating is not None:
            rated[r.group_key()].append(r)
    for group in rated.values():
        best = max(group, key=lambda r: r.rating or 0.0)
        worst = min(group, key=lambda r: r.rating or 0.0)
        gap = (best.rating or 0.0) - (worst.rating or 0.0)
        if gap <= rating_margin or best.selection == worst.selection:
            continue
        assert best.selection is not None
        assert worst.selection is not None
        pairs.append(
            FeedbackPair(
                query=best.query,
                passages=best.passages,
                chosen=best.selection,
                rejected=worst.selection,
                source=f"ratings {best.rating} > {worst.rating}",
            )
        )
    logger.info("%d preference pairs from %d feedback records", len(pairs), len(records))
    return pairs


class FeedbackLogs(BaseModel):
    """The feedback logs a stage trains on: what ``feedback`` and ``encoder-feedback`` share.

    Each stage's section class adds its own training settings to these fields:
    `dynrag.training.stages.feedback.FeedbackConfig` the DPO trainer's (``feedback:``),
    `dynrag.training.stages.encoder_feedback.EncoderFeedbackConfig` the head's
    (``encoder-feedback:``).
    """

    model_config = ConfigDict(extra="forbid")

    path: list[Path] = Field(default_factory=list, description="Feedback JSONL files.")
    rating_margin: float = Field(
        default=0.0, ge=0.0, description="Smallest rating gap for a pair built from ratings."
    )

    def files(self, section: str) -> Sequence[Path]:
        """The files of ``path`` (a stage's input files; ``section`` names its YAML section).

        Raises:
            ValueError: ``path`` names no file.
        """
        if not self.path:
            msg = f"{section}.path names no file; list the feedback JSONL files in the config"
            raise ValueError(msg)
        return list(self.path)

    def records(self) -> list[FeedbackRecord]:
        """Every record of the files of ``path``, validated (`read_feedback`)."""
        return [r for path in self.path for r in read_feedback(path)]

    def pairs(self, records: list[FeedbackRecord]) -> list[FeedbackPair]:
        """The preference pairs of ``records`` with this ``rating_margin`` (`feedback_pairs`)."""
        return feedback_pairs(records, self.rating_margin)
