"""The example type shared by training and evaluation, and the text normalisation of QA."""

from __future__ import annotations

import re
import string

from pydantic import BaseModel, Field

from dynrag.core.types import Passage

__all__ = ["QAExample", "normalize_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces.

    Answers are scored on it (`dynrag.eval.metrics`), and questions matched on it.
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


class QAExample(BaseModel):
    """One question with its candidate passages, gold answers and (when known) gold passages."""

    id: str
    """The record's id; ``file:line`` when it has none, ``id#file:line`` when it repeats one."""
    question: str
    """The question."""
    answers: list[str]
    """Gold answers (aliases); a prediction matching any of them counts."""
    passages: list[Passage]
    """Candidates, in retrieval order."""
    gold: list[int] | None = Field(default=None)
    """0-based positions of the supporting passages; None when the format has no labels."""
