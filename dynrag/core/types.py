"""Data types shared by every part of dynrag: passages in, selections out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, computed_field


class _TextEnum(str, Enum):
    """A string enum that prints as its value (``ok``, not ``SelectionStatus.OK``)."""

    def __str__(self) -> str:
        return str(self.value)


class ParseStatus(_TextEnum):
    """What `parse_selection` made of the text."""

    OK = "ok"
    """Exactly the expected grammar, no repair needed."""
    NONE = "none"
    """The model said no passage is needed."""
    REPAIRED = "repaired"
    """Ids were found, but in another form, with duplicates, out of range, or among prose."""
    UNPARSEABLE = "unparseable"
    """No usable id and no ``None``."""


class ParseResult(BaseModel):
    """The outcome of `parse_selection`."""

    indices: list[int] = Field(default_factory=list)
    """Unique, in-range 0-based positions, in the order the model wrote them."""
    status: ParseStatus
    """See `ParseStatus`."""
    notes: list[str] = Field(default_factory=list)
    """What was repaired, in words."""


class Passage(BaseModel):
    """One candidate passage: what the reranker reads about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    """The passage's content."""
    title: str | None = None
    """An optional title (for Wikipedia passages, the article's name)."""
    id: str | None = None
    """An optional identifier of the caller's; dynrag never reads it."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Anything else of the caller's, carried through untouched."""


PassageLike = Union[str, Passage, Mapping[str, Any]]  # noqa: UP007 (a runtime alias on 3.10)
"""What `DynamicReranker.rerank` accepts for one passage."""


class SelectionStatus(_TextEnum):
    """How a selection came about.

    - ``ok``: the model wrote a valid selection and the policy kept it as written.
    - ``none``: the model said no passage is needed and the policy allows an empty selection.
    - ``repaired``: the model's text was usable but needed repair (duplicate or out-of-range ids
      dropped, stray text ignored) or the policy changed it (``max_k``, ``min_k``, token budget);
      ``Selection.notes`` says what was done.
    - ``fallback``: the text could not be used (unparseable, or empty where empty is not allowed),
      so the policy's fallback was returned; this is logged as a warning.
    """

    OK = "ok"
    NONE = "none"
    REPAIRED = "repaired"
    FALLBACK = "fallback"


class Selection(BaseModel):
    """The reranker's answer for one query: which passages, in which order."""

    model_config = ConfigDict(extra="forbid")

    indices: list[int]
    """0-based positions into the input passages, most useful first."""
    passages: list[Passage]
    """The selected passages, in the same order as ``indices``."""
    raw_output: str = ""
    """The text a generative model wrote ("" for a family that writes none, as the encoder and
    the HTTP client; the encoder's cut is in ``notes``). For several windows, each window's text
    joined by newlines. Its ids
    number the candidates as the model read them: after any presort (see ``shown_order``), and
    within its window in a tournament; ``indices`` number them as the caller gave them."""
    shown_order: list[int] | None = None
    """The caller's position of each candidate in the order the model read them, when a presort
    changed it: id ``[j]`` in a one-window ``raw_output`` is the caller's ``shown_order[j - 1]``.
    None: the model read the caller's order."""
    status: SelectionStatus
    """See `SelectionStatus`."""
    notes: list[str] = Field(default_factory=list)
    """What parsing repair or the policy changed, in words."""
    num_candidates: int = 0
    """How many passages the reranker was given."""
    rerank_seconds: float = 0.0
    """Wall time spent producing this selection (for `rerank_batch`, the batch's time divided by
    its queries)."""
    model_calls: int = 0
    """How many generations were needed (more than one when candidates exceed the window)."""
    stop_probability: float | None = None
    """The model's calibrated probability that no further passage is needed (k = 0: that no
    candidate answers the question); None for models that do not estimate it (generative)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def k(self) -> int:
        """The number of passages selected."""
        return len(self.indices)


def no_candidates(seconds: float = 0.0, stop_probability: float | None = None) -> Selection:
    """The selection for a query given no candidates: empty, ``none``, noted."""
    return Selection(
        indices=[],
        passages=[],
        raw_output="",
        status=SelectionStatus.NONE,
        notes=["no candidates"],
        num_candidates=0,
        rerank_seconds=seconds,
        stop_probability=stop_probability,
    )


def to_passage(item: PassageLike, position: int) -> Passage:
    """Turn a `str`, `Passage` or mapping with ``text`` (and ``title``) into a `Passage`.

    Raises:
        TypeError: ``item`` is of another type, or a mapping without a string ``text``.
    """
    if isinstance(item, Passage):
        return item
    if isinstance(item, str):
        return Passage(text=item)
    if isinstance(item, Mapping):
        text = item.get("text", item.get("content", item.get("paragraph_text")))
        if not isinstance(text, str):
            msg = f"passage {position} is a mapping without a string 'text' field"
            raise TypeError(msg)
        title = item.get("title")
        extra = {k: v for k, v in item.items() if k not in {"text", "title", "id"}}
        pid = item.get("id")
        return Passage(
            text=text,
            title=None if title is None else str(title),
            id=None if pid is None else str(pid),
            metadata=extra,
        )
    msg = (
        f"passage {position} is of type {type(item).__name__}; "
        "expected str, dynrag.Passage or a mapping with 'title'/'text'"
    )
    raise TypeError(msg)


def titled_passage(text: str, metadata: Mapping[str, Any], title_key: str) -> Passage:
    """A passage whose title is ``metadata[title_key]`` when there is one (as text).

    How the adapters read a LlamaIndex node or a LangChain document.
    """
    title = metadata.get(title_key)
    return Passage(text=text, title=None if title is None else str(title))


def to_passages(items: Sequence[PassageLike]) -> list[Passage]:
    """Convert a sequence of passage-like items, checking each (see `to_passage`)."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        msg = f"passages must be a list of passages, not {type(items).__name__}"
        raise TypeError(msg)
    return [to_passage(item, i) for i, item in enumerate(items)]
