"""Passage preparation shared by the reranker, the answer generator and training prompts.

One function cuts passages to a token limit, so that what a model reads at inference is
exactly what it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dynrag.core.types import Passage

__all__ = ["Truncate", "cut_passages"]

Truncate = Callable[[str, int], tuple[str, bool]]
"""``truncate(text, max_tokens) -> (text, was_cut)``, e.g. a backend's ``truncate``."""


def cut_passages(
    passages: Sequence[Passage], truncate: Truncate, max_tokens: int
) -> tuple[list[Passage], int]:
    """Copies of ``passages`` whose text is cut to ``max_tokens`` tokens, and how many were cut.

    Uncut passages are returned as they are (passages are immutable); metadata is kept.

    Raises:
        ValueError: ``max_tokens`` below 1.
    """
    if max_tokens < 1:
        msg = f"max_tokens must be at least 1, got {max_tokens}"
        raise ValueError(msg)
    shown: list[Passage] = []
    cut = 0
    for p in passages:
        text, was_cut = truncate(p.text, max_tokens)
        cut += was_cut
        shown.append(p.model_copy(update={"text": text}) if was_cut else p)
    return shown, cut
