"""Turn a reranker's text into passage positions, whatever the model wrote.

The released checkpoints write ``[3], [1], [7]`` (1-based ids, most useful first) or ``None``.
Models also write ``[2] > [1]``, ``2, 1``, ``Document [2]``, ``[Document 2]``, and add prose
before or after. `parse_selection` accepts all of these, keeps the ids in the order written,
drops duplicates and ids outside ``1..num_candidates`` (so id 0 is never valid), and never raises.
"""

from __future__ import annotations

import re

from dynrag.core.types import ParseResult, ParseStatus

__all__ = ["parse_selection"]

_MAX_ID_DIGITS = 9  # longer digit runs are out of range anyway; int() of huge runs can raise
_BRACKETED = re.compile(r"\[\s*(?:(?:document|doc|passage|id)\s*)?#?\s*(\d+)\s*\]", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w.])(\d+)(?![\w]|\.\d)")
_CANONICAL = re.compile(r"\s*\[\d+\](?:\s*,\s*\[\d+\])*\s*")
_NONE_START = re.compile(r"^\W*none\b", re.IGNORECASE)
# What may stand between two ids of one list; anything else ends the list (trailing prose).
_GAP_WORDS = re.compile(
    r"\b(?:and|then|or|documents?|docs?|passages?|ids?|identifiers?)\b", re.IGNORECASE
)
_GAP_CHARS = re.compile(r"[\s,;>|&/#:\-.'\"`*]+")


def _is_gap(text: str) -> bool:
    """Whether ``text`` (between two ids) only holds separators, so both ids belong to one list."""
    return not _GAP_CHARS.sub("", _GAP_WORDS.sub("", text))


def _first_list(text: str, pattern: re.Pattern[str]) -> list[str] | None:
    """The digit strings of the first run of ``pattern`` matches joined only by separators."""
    matches = list(pattern.finditer(text))
    if not matches:
        return None
    run = [matches[0]]
    for match in matches[1:]:
        if not _is_gap(text[run[-1].end() : match.start()]):
            break
        run.append(match)
    return [m.group(1) for m in run]


def parse_selection(text: str, num_candidates: int) -> ParseResult:
    """Parse a reranker's output into 0-based positions.

    Args:
        text: What the model wrote.
        num_candidates: How many passages the model was shown; valid ids are ``1..num_candidates``.

    Returns:
        A `ParseResult`; it never raises on any string.

    Example:
        >>> parse_selection("[3], [1], [7]", 10).indices
        [2, 0, 6]
    """
    if not isinstance(text, str):
        return ParseResult(status=ParseStatus.UNPARSEABLE, notes=["output is not text"])
    if _NONE_START.match(text):
        return ParseResult(status=ParseStatus.NONE)
    notes: list[str] = []
    digits = _first_list(text, _BRACKETED)
    if digits is None:
        digits = _first_list(text, _BARE)
        if digits is None:
            return ParseResult(status=ParseStatus.UNPARSEABLE, notes=["no id found"])
        notes.append("ids written without brackets")
    elif not _CANONICAL.fullmatch(text):
        notes.append("ids found among other text")
    indices: list[int] = []
    seen: set[int] = set()
    for raw in digits:
        value = int(raw) if len(raw) <= _MAX_ID_DIGITS else -1
        if not 1 <= value <= num_candidates:
            notes.append(f"dropped out-of-range id {raw[:12]}")
            continue
        if value - 1 in seen:
            notes.append(f"dropped duplicate id {value}")
            continue
        seen.add(value - 1)
        indices.append(value - 1)
    if not indices:
        return ParseResult(status=ParseStatus.UNPARSEABLE, notes=[*notes, "no valid id left"])
    status = ParseStatus.REPAIRED if notes else ParseStatus.OK
    return ParseResult(indices=indices, status=status, notes=notes)
