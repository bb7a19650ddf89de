"""The tournament: how a generative reranker reads more candidates than its window.

Pure functions over candidate positions (no model). The candidates are cut into even windows
in retrieval order; each window's model output keeps some of them (window ids mapped back to
positions in the whole list); the survivors, in retrieval order, go to another round until they
fit one window, where the final order and k are chosen.

- A window whose output cannot be parsed passes all its candidates on, so nothing is lost; if
  every window of a round is unparseable, the round is unparseable (the policy's fallback).
- A round that keeps every candidate would never end: the windows' rankings are interleaved
  (every window's first choice, then every second...) and that is the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["RoundOutcome", "first_round", "interleave", "next_round", "split_windows"]


def split_windows(candidates: Sequence[int], window_size: int) -> list[list[int]]:
    """``candidates`` cut into the fewest windows of at most ``window_size``, of even sizes.

    Raises:
        ValueError: ``window_size`` below 2.
    """
    if window_size < 2:
        msg = f"window_size must be at least 2, got {window_size}"
        raise ValueError(msg)
    if not candidates:
        return []
    count = math.ceil(len(candidates) / window_size)
    size = math.ceil(len(candidates) / count)  # even windows, none tiny
    return [list(candidates[i : i + size]) for i in range(0, len(candidates), size)]


def first_round(num_candidates: int, window_size: int) -> tuple[list[list[int]], bool]:
    """The first round's windows over ``0..num_candidates-1``, and whether it is final."""
    if num_candidates <= window_size:
        return ([list(range(num_candidates))] if num_candidates else []), True
    return split_windows(list(range(num_candidates)), window_size), False


def interleave(rankings: Sequence[Sequence[int]]) -> list[int]:
    """Every ranking's first item, then every second... (rankings' order kept)."""
    depth = max((len(r) for r in rankings), default=0)
    return [r[i] for i in range(depth) for r in rankings if i < len(r)]


@dataclass
class RoundOutcome:
    """What follows a non-final round: more windows, a final window, or a decided result."""

    windows: list[list[int]] = field(default_factory=list)
    """The next round's windows (empty when decided)."""
    final: bool = False
    """Whether ``windows`` is the single final window."""
    decided: list[int] | None = None
    """The result, when no final model call is needed (``[]``: every window said None)."""
    unparseable: bool = False
    """Every window's output was unparseable: the caller applies its fallback."""
    notes: list[str] = field(default_factory=list)
    """What happened, in words."""


def next_round(
    windows: Sequence[Sequence[int]],
    choices: Sequence[Sequence[int] | None],
    window_size: int,
) -> RoundOutcome:
    """The round after ``windows``, given each window's choice.

    Args:
        windows: The round's windows (positions in the whole list).
        choices: Per window, the positions it kept in the model's order, or None when its
            output was unparseable (all its candidates go on).
        window_size: Candidates the model reads at once.
    """
    bad = sum(c is None for c in choices)
    notes = [f"{bad} window(s) unparseable; their candidates go on"] if bad else []
    if windows and bad == len(windows):
        return RoundOutcome(unparseable=True, notes=["every window's output was unparseable"])
    kept_windows = [
        list(w) if c is None else list(c) for w, c in zip(windows, choices, strict=True)
    ]
    kept = sorted(i for w in kept_windows for i in w)
    shown = sum(len(w) for w in windows)
    if not kept:
        return RoundOutcome(decided=[], notes=[*notes, "every window said None"])
    if len(kept) <= window_size:  # the final round sees the survivors in retrieval order
        return RoundOutcome(windows=[kept], final=True, notes=notes)
    if len(kept) < shown:
        return RoundOutcome(windows=split_windows(kept, window_size), notes=notes)
    return RoundOutcome(
        decided=interleave(kept_windows),
        notes=[*notes, "windows kept every candidate; their rankings were interleaved"],
    )
