"""The selection policy: what is done with a parsed selection before it is returned."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dynrag.core.types import ParseResult, ParseStatus, Passage, SelectionStatus

__all__ = [
    "POLICY_FIELDS",
    "PolicyFields",
    "PolicyOptions",
    "PolicyOutcome",
    "SelectionPolicy",
    "refuse_unknown",
    "with_top_n",
]

logger = logging.getLogger(__name__)


class PolicyOutcome(BaseModel):
    """The final indices, with the status and notes that explain them."""

    indices: list[int]
    status: SelectionStatus
    notes: list[str] = Field(default_factory=list)


class PolicyFields(BaseModel):
    """The five options of a selection policy, declared once.

    `SelectionPolicy` is made of them, and so are the options of both adapters
    (`PolicyOptions`); ``dynrag serve``'s request carries the same names.
    """

    min_k: int = Field(default=0, ge=0, description="Select at least this many passages.")
    max_k: int | None = Field(
        default=None,
        ge=0,
        description="Select at most this many passages (None: no cap; a trained model records "
        "its own).",
    )
    allow_empty: bool = Field(
        default=True,
        description="Whether the model may select nothing; else the fallback applies.",
    )
    fallback_k: int | None = Field(
        default=None,
        ge=0,
        description="On unusable output, keep this many candidates in retrieval order "
        "(None: all of them, within max_k).",
    )
    token_budget: int | None = Field(
        default=None,
        ge=1,
        description="Cut the selection's tail until its passages total at most this many tokens.",
    )


POLICY_FIELDS: tuple[str, ...] = tuple(PolicyFields.model_fields)
"""The names of the policy's options."""


def refuse_unknown(family: str, options: Iterable[str], takes: str) -> None:
    """The one check of a family's keyword options: anything but a policy field is refused.

    Raises:
        TypeError: an option that is no policy field, named with what the family takes.
    """
    unknown = sorted(set(options) - set(POLICY_FIELDS))
    if unknown:
        msg = (
            f"the {family} family does not take {', '.join(unknown)}; it takes {takes} and "
            f"the policy fields {', '.join(POLICY_FIELDS)}"
        )
        raise TypeError(msg)


def with_top_n(options: dict[str, Any], top_n: int | None) -> dict[str, Any]:
    """``options`` with ``top_n`` as ``max_k``: a cap; the model may choose fewer.

    ``top_n`` is the name LlamaIndex, LangChain and Cohere users type.

    Raises:
        ValueError: ``top_n`` and a ``max_k`` that differ.
    """
    if top_n is None:
        return options
    max_k = options.get("max_k")
    if max_k is not None and max_k != top_n:
        msg = f"top_n ({top_n}) and max_k ({max_k}) differ; give one of them"
        raise ValueError(msg)
    return {**options, "max_k": top_n}


class SelectionPolicy(PolicyFields):
    """Bounds and fallbacks applied to every selection, in this order.

    1. Unparseable output, or an empty selection where ``allow_empty`` is false: the fallback,
       the first ``fallback_k`` candidates in retrieval order (all of them when None); reported
       as ``status="fallback"``.
    2. ``max_k``: the tail beyond it is cut.
    3. ``min_k``: too short a selection is completed with the next candidates in retrieval order.
    4. ``token_budget``: the tail is cut until the selected passages fit, never below ``min_k``
       and never to nothing where ``allow_empty`` is false.

    A passage whose text repeats one already chosen (lower case, white space folded) never takes
    a second place: it is dropped before the bounds apply, noted, and never added by ``min_k``.

    One rule for every selection, the fallback included: the bounds (2-4) always hold, so a
    fallback keeps at most ``max_k`` candidates. A fallback is logged as one warning that names
    the candidates finally kept and every bound that cut them.

    Constrained decoding already enforces ``max_k``, ``min_k`` and ``allow_empty`` while the
    model writes; the policy applies them again to any backend's text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

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
        """This policy with ``updates`` in place of its own options, validated as a whole.

        The one merge rule of every caller (adapters, server, CLI, loaders): options left unset
        take this policy's (a trained model's ``max_k``...). ``model_copy`` would not validate.

        Raises:
            ValueError: the merged bounds contradict each other (e.g. ``min_k`` above this
                policy's ``max_k``), or an unknown field.
        """
        return SelectionPolicy.model_validate({**self.model_dump(), **updates})

    def merged_or_explain(self, given: dict[str, object]) -> SelectionPolicy:
        """`merged`, with a contradiction explained in one line (for request and flag errors).

        Raises:
            ValueError: one line naming what contradicts; when ``max_k`` was not given, it says
                the cap is this policy's own (a trained model's) and how to lift it.
        """
        try:
            return self.merged(**given)
        except ValidationError as err:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
            if "max_k" not in given and self.max_k is not None:
                problems += f" (the model's own max_k is {self.max_k}; give max_k to lift it)"
            raise ValueError(problems) from None

    @classmethod
    def for_model(
        cls,
        recorded_max_k: int | None,
        policy: SelectionPolicy | None = None,
        **fields: object,
    ) -> SelectionPolicy:
        """A loaded model's default policy: ``policy`` as given, or ``fields`` over the model's.

        Every family's loader calls this: a model records the largest k it was trained to
        choose (``max_k`` in ``dynrag_config.json``), which holds unless a field overrides it.

        Raises:
            ValueError: both ``policy`` and fields, or bounds that contradict each other.
        """
        if policy is not None:
            if fields:
                msg = "pass either policy= or policy fields such as max_k=, not both"
                raise ValueError(msg)
            return policy
        recorded = cls() if recorded_max_k is None else cls(max_k=recorded_max_k)
        return recorded.merged(**fields)

    @property
    def floor(self) -> int:
        """The fewest passages a selection may hold (before capping at the candidates)."""
        return max(self.min_k, 0 if self.allow_empty else 1)

    @staticmethod
    def _distinct(
        indices: list[int],
        passages: Sequence[Passage],
        seen: dict[tuple[int, str], int],
        cuts: list[str],
    ) -> list[int]:
        """``indices`` without a passage whose text repeats an earlier one's (noted in ``cuts``).

        Texts match after lower-casing and folding white space; ``seen`` maps each kept text to
        its position, so that later additions skip them too.
        """
        kept, repeats = [], []
        for i in indices:
            key = _text_key(passages[i])
            if key in seen:
                repeats.append(f"{i} repeats {seen[key]}")
            else:
                seen[key] = i
                kept.append(i)
        if repeats:
            cuts.append(f"duplicates not chosen twice (positions): {', '.join(repeats)}")
        return kept

    def apply(
        self,
        parsed: ParseResult,
        passages: Sequence[Passage],
        count_tokens: Callable[[Passage], int] | None = None,
    ) -> PolicyOutcome:
        """Apply the policy to a parse of the model's output for ``passages``.

        Args:
            parsed: The output of `dynrag.core.generative.parsing.parse_selection`.
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
        seen: dict[tuple[int, str], int] = {}
        indices = self._distinct(indices, passages, seen, cuts)
        if self.max_k is not None and len(indices) > self.max_k:
            cuts.append(f"max_k: cut {len(indices)} -> {self.max_k}")
            indices = indices[: self.max_k]
        floor = min(self.floor, n)
        if len(indices) < floor:
            extra: list[int] = []
            for i in range(n):  # the next candidates in retrieval order, never a repeated text
                if len(indices) + len(extra) >= floor:
                    break
                if i in indices:
                    continue
                key = _text_key(passages[i])
                if key in seen:
                    continue
                seen[key] = i
                extra.append(i)
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


def _text_key(passage: Passage) -> tuple[int, str]:
    """What makes two passages the same text: lower case, white space folded.

    Bounded work: a text longer than `WORK_CHARS` is told by its folded first `WORK_CHARS`
    characters and its length.
    """
    from dynrag.core.passages import WORK_CHARS

    text = passage.text
    long = len(text) if len(text) > WORK_CHARS else 0
    return long, " ".join(text[:WORK_CHARS].lower().split())


class PolicyOptions(PolicyFields):
    """The policy options of a framework component (both adapters inherit them).

    The component validates its bounds when built, adopts the reranker's own policy for every
    option the caller left unset (`adopt_policy`), and passes `policy` with each call.
    ``top_n`` (the frameworks' name) is taken as ``max_k`` and read back as `top_n`.
    """

    @model_validator(mode="before")
    @classmethod
    def _top_n_is_max_k(cls, data: Any) -> Any:
        if isinstance(data, dict) and "top_n" in data:
            data = dict(data)
            return with_top_n(data, data.pop("top_n"))
        return data

    @model_validator(mode="after")
    def _bounds_agree(self) -> PolicyOptions:
        SelectionPolicy.model_validate(self, from_attributes=True)  # bad bounds: before loading
        return self

    def adopt_policy(self, own: SelectionPolicy, given: Iterable[str]) -> None:
        """Options not in ``given`` take ``own``'s values (not marked as set by the caller).

        Raises:
            ValueError: the given options contradict ``own`` (e.g. ``min_k`` above its
                ``max_k``).
        """
        policy = own.merged(**{n: getattr(self, n) for n in given if n in POLICY_FIELDS})
        for name in POLICY_FIELDS:
            self.__dict__[name] = getattr(policy, name)

    @property
    def policy(self) -> SelectionPolicy:
        """The selection policy these options make."""
        return SelectionPolicy.model_validate(self, from_attributes=True)

    @property
    def top_n(self) -> int | None:
        """``max_k`` under the name the frameworks' rerankers use (a cap: k may be lower)."""
        return self.max_k
