"""The example type shared by training and evaluation: a question, its candidates, its gold."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dynrag.core.types import Passage

__all__ = ["QAExample"]


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
