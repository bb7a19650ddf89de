"""The rows a causal LM is trained on: prompts and target completions, as at inference.

Prompts are rendered exactly as `GenerativeReranker` renders them at inference (same prompt
format, same per-passage token limit, same chat template), so training and inference never
disagree on the format. `fit_length` drops the rows that do not fit the trainer's length.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from dynrag.core.generative.backends.base import HFTokenizerText
from dynrag.core.generative.backends.transformers import render_chat
from dynrag.core.generative.prompts import Message, PromptFormat, get_prompt_format
from dynrag.core.types import Passage

__all__ = ["PromptBuilder", "fit_length"]

logger = logging.getLogger(__name__)


class PromptBuilder(HFTokenizerText):
    """Renders a question and its candidates into the policy's prompt string.

    Passages are cut with the backends' own `truncate`, so training sees what inference sees.
    """

    def __init__(self, tokenizer: Any, prompt_format: str | PromptFormat, max_passage_tokens: int):
        """Use ``tokenizer``'s chat template, the named prompt format and the passage limit."""
        self.tokenizer = tokenizer
        self.fmt = get_prompt_format(prompt_format)
        self.max_passage_tokens = max_passage_tokens

    def messages(self, question: str, passages: Sequence[Passage]) -> list[Message]:
        """The chat messages, passages cut as `GenerativeReranker` cuts them."""
        shown = [
            p.model_copy(update={"text": self.truncate(p.text, self.max_passage_tokens)[0]})
            for p in passages
        ]
        return self.fmt.messages(question, shown)

    def prompt(self, question: str, passages: Sequence[Passage]) -> str:
        """The rendered prompt the completion follows."""
        return render_chat(self.tokenizer, self.messages(question, passages))

    def completion(self, indices: Sequence[int]) -> str:
        """The target text for a selection, ended by the end-of-turn token."""
        return self.fmt.format_selection(indices) + self.tokenizer.eos_token


def fit_length(
    rows: list[dict[str, Any]],
    builder: PromptBuilder,
    max_length: int | None,
    fields: Sequence[str],
) -> tuple[list[dict[str, Any]], int]:
    """Rows whose prompt + completion fit ``max_length`` tokens, and the trainer's max length.

    The length returned is the longest kept row's. Longer rows are dropped with a warning: a
    completion is never truncated.
    """
    kept: list[dict[str, Any]] = []
    longest = 0
    for row in rows:
        prompt = builder.count_tokens(row["prompt"])
        total = max(prompt + builder.count_tokens(row[f]) for f in fields)
        if max_length is not None and total > max_length:
            continue
        longest = max(longest, total)
        kept.append(row)
    if len(kept) < len(rows):
        logger.warning(
            "dropped %d of %d examples longer than max_length=%s tokens (raise max_length or "
            "lower max_passage_tokens to keep them)",
            len(rows) - len(kept),
            len(rows),
            max_length,
        )
    return kept, longest + 1
