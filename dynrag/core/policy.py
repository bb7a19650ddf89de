"""The selection policy: what is done with a parsed selection before it is returned."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynrag.core.parsing import ParseResult, ParseStatus
from dynrag.core.types import Passage, SelectionStatus

__all__ = ["PolicyOutcome", "SelectionPolicy"]

logger = logging.getLogger(__name__)


class PolicyOutcome(BaseModel):
    """The final indices, with the status and notes that explain them."""

    indices: list[int]
    status: SelectionStatus
    notes: list[str] = Field(default_factory=list)


class SelectionPolicy(BaseModel):
    """Bounds and fallbacks applied to every selection, in this order.

    1. Unparseable output, or an empty selection where ``allow_empty`` is false: the fallback,
       the first ``fallback_k`` candidates in retrieval order (all of them when None); reported
       as ``status="fallback"``.
    2. ``max_k``: the tail beyond it is cut.
    3. ``min_k``: too short a selection is completed with the next candidates in retrieval order.
    4. ``token_budget``: the tail is cut until the selected passages fit, never below ``min_k``
       and never to nothing where ``allow_empty`` is false.

    One rule for every selection, the fallback included: the bounds (2-4) always hold, so a
    fallback keeps at most ``max_k`` candidates. A fallback is logged as one warning that names
    the candidates finally kept and every bound that cut them.

    Constrained decoding already enforces ``max_k``, ``min_k`` and ``allow_empty`` while the
    model writes; the policy applies them again to any backend's text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_k: int = Field(default=0, ge=0, description="Select at least this many passages.")
    max_k: int | None = Field(
        default=None, ge=0, description="Select at most this many passages (None: no cap)."
    )
    allow_empty: bool = Field(
        default=True,
        description="Whether the model may select nothing ('None'); else the fallback applies.",
    )
    fallback_k: int | None = Field(
        default=None,
        ge=0,
        description="On unusable output, keep this many candidates in retrieval order "
        "(None: all of them).",
    )
    token_budget: int | None = Field(
        default=None,
        ge=1,
        description="Cut the selection's tail until its passages total at most this many tokens.",
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> SelectionPolicy:
        if self.max_k is not None and self.min_k > self.max_k:
            msg = f"min_k ({self.min_k}) is larger than max_k ({self.max_k})"
            raise ValueError(msg)
        if self.max_k == 0 and not self.allow_empty:
            msg = "max_k 0 leaves nothing, but allow_empty is false"
            raise ValueError(msg)
        return self

    def merged(self, **updates: object) -> SelectionPolicy:
        """A copy with ``updates`` applied, validated as a whole (``model_copy`` is not).

        Raises:
            ValueError: the merged bounds contradict each other (e.g. ``min_k`` above this
                policy's ``max_k``), or an unknown field.
        """
        return SelectionPolicy.model_validate({**self.model_dump(), **updates})

    def fill_unset(self, given: dict[str, object]) -> dict[str, object]:
        """Every policy field: the ``given`` ones, the others this policy's.

        The adapters' options left unset inherit the reranker's own policy this way (a trained
        model's ``max_k``).
        """
        return {name: given.get(name, getattr(self, name)) for name in type(self).model_fields}

    @property
    def floor(self) -> int:
        """The fewest passages a selection may hold (before capping at the candidates)."""
        return max(self.min_k, 0 if self.allow_empty else 1)

    def apply(
        self,
        parsed: ParseResult,
        passages: Sequence[Passage],
        count_tokens: Callable[[Passage], int] | None = None,
    ) -> PolicyOutcome:
        """Apply the policy to a parse of the model's output for ``passages``.

        Args:
            parsed: The output of `dynrag.core.parsing.parse_selection`.
            passages: The candidates the model was shown, in retrieval order.
            count_tokens: How many tokens a passage costs the generator; needed for
                ``token_budget``.
        """
        n = len(passages)
        notes = list(parsed.notes)
        indices = [i for i in parsed.indices if 0 <= i < n]
        empty_not_allowed = parsed.status == ParseStatus.NONE and not self.allow_empty
        fallback: str | None = None
        if parsed.status == ParseStatus.UNPARSEABLE or empty_not_allowed:
            k = n if self.fallback_k is None else min(self.fallback_k, n)
            fallback = "empty selection not allowed" if empty_not_allowed else "unparseable output"
            notes.append(f"fallback: {fallback}, first {k} candidates in retrieval order")
            indices = list(range(k))
            status = SelectionStatus.FALLBACK
        elif parsed.status == ParseStatus.NONE:
            status = SelectionStatus.NONE
        else:
            status = (
                SelectionStatus.REPAIRED
                if parsed.status == ParseStatus.REPAIRED
                else SelectionStatus.OK
            )
        cuts: list[str] = []
        if self.max_k is not None and len(indices) > self.max_k:
            cuts.append(f"max_k: cut {len(indices)} -> {self.max_k}")
            indices = indices[: self.max_k]
        floor = min(self.floor, n)
        if len(indices) < floor:
            extra = [i for i in range(n) if i not in set(indices)][: floor - len(indices)]
            what = "min_k" if self.min_k >= floor else "allow_empty"
            cuts.append(f"{what}: added {len(extra)} in retrieval order")
            indices = indices + extra
        if self.token_budget is not None and indices:
            if count_tokens is None:
                msg = "token_budget needs a count_tokens function"
                raise ValueError(msg)
            costs = [count_tokens(passages[i]) for i in indices]
            keep = len(indices)
            while keep > floor and sum(costs[:keep]) > self.token_budget:
                keep -= 1
            if keep < len(indices):
                cuts.append(f"token_budget: cut {len(indices)} -> {keep}")
                indices = indices[:keep]
        notes.extend(cuts)
        if fallback is not None:
            logger.warning(
                "%s; fell back to %d of %d candidates in retrieval order%s",
                fallback,
                len(indices),
                n,
                f" ({'; '.join(cuts)})" if cuts else "",
            )
        elif cuts and status in (SelectionStatus.OK, SelectionStatus.NONE):
            status = SelectionStatus.REPAIRED
        return PolicyOutcome(indices=indices, status=status, notes=notes)
