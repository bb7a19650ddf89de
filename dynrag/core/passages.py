"""Text preparation shared by the reranker, the answer generator and training prompts.

One function cuts passages to a token limit, so that what a model reads at inference is
exactly what it was trained on; `cut_text` bounds any other text of a prompt (the query, a
title), so that no input, however long, builds a prompt past the model's context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dynrag.core.types import Passage

__all__ = [
    "CHARS_PER_TOKEN_BOUND",
    "WORK_CHARS",
    "Truncate",
    "TruncateMany",
    "count_tokens_bounded",
    "cut_passages",
    "cut_text",
    "cut_texts",
]

Truncate = Callable[[str, int], tuple[str, bool]]
"""``truncate(text, max_tokens) -> (text, was_cut)``, e.g. a backend's ``truncate``."""

TruncateMany = Callable[[Sequence[str], int], list[tuple[str, bool]]]
"""`Truncate` for many texts in one call (one tokenizer pass)."""

CHARS_PER_TOKEN_BOUND = 32
"""No token of a real tokenizer spells more characters than this; text beyond
``max_tokens * CHARS_PER_TOKEN_BOUND`` characters is dropped before tokenizing, so that cutting
a huge text costs no more than cutting a long one."""


WORK_CHARS = 2048 * CHARS_PER_TOKEN_BOUND
"""The most characters of one passage a reranker works on (2,048 tokens' worth): beyond it text
is dropped before tokenizing, BM25 or counting, so one huge passage costs what a long one does.
`Selection.passages` still holds the caller's full text."""


def count_tokens_bounded(count: Callable[[str], int], text: str) -> int:
    """``count(text)``, tokenizing at most `WORK_CHARS` characters.

    Past the bound the rest is counted at `CHARS_PER_TOKEN_BOUND` characters a token: a lower
    bound, which for a token budget only matters far beyond any budget.
    """
    if len(text) <= WORK_CHARS:
        return count(text)
    rest = len(text) - WORK_CHARS
    return count(text[:WORK_CHARS]) + -(-rest // CHARS_PER_TOKEN_BOUND)


def _check(max_tokens: int) -> None:
    if max_tokens < 1:
        msg = f"max_tokens must be at least 1, got {max_tokens}"
        raise ValueError(msg)


def cut_text(text: str, truncate: Truncate, max_tokens: int) -> tuple[str, bool]:
    """``text`` cut to at most ``max_tokens`` tokens, and whether it was cut.

    Raises:
        ValueError: ``max_tokens`` below 1.
    """
    return cut_texts([text], lambda texts, m: [truncate(t, m) for t in texts], max_tokens)[0]


def cut_texts(
    texts: Sequence[str], truncate_many: TruncateMany, max_tokens: int
) -> list[tuple[str, bool]]:
    """`cut_text` for many texts with one batched ``truncate_many`` call.

    Raises:
        ValueError: ``max_tokens`` below 1.
    """
    _check(max_tokens)
    limit = max_tokens * CHARS_PER_TOKEN_BOUND
    cut = truncate_many([t[:limit] for t in texts], max_tokens)
    return [(out, was_cut or len(t) > limit) for t, (out, was_cut) in zip(texts, cut, strict=True)]


def cut_passages(
    passages: Sequence[Passage],
    truncate: Truncate,
    max_tokens: int,
    *,
    max_title_tokens: int | None = None,
) -> tuple[list[Passage], int]:
    """Copies of ``passages`` whose text is cut to ``max_tokens`` tokens, and how many were cut.

    With ``max_title_tokens``, titles are cut to that many tokens too (and counted as cut).
    Uncut passages are returned as they are (passages are immutable); metadata is kept.

    Raises:
        ValueError: ``max_tokens`` or ``max_title_tokens`` below 1.
    """
    _check(max_tokens)
    if max_title_tokens is not None:
        _check(max_title_tokens)
    shown: list[Passage] = []
    cut = 0
    for p in passages:
        update: dict[str, str] = {}
        text, was_cut = cut_text(p.text, truncate, max_tokens)
        if was_cut:
            update["text"] = text
        if max_title_tokens is not None and p.title:
            title, title_cut = cut_text(p.title, truncate, max_title_tokens)
            if title_cut:
                update["title"] = title
        cut += bool(update)
        shown.append(p.model_copy(update=update) if update else p)
    return shown, cut
