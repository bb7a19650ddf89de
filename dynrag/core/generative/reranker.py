"""`GenerativeReranker`, the generative family: an LLM writes the ids of the passages needed.

Loading lives in `dynrag.core.generative.loader`; the tournament over more candidates than one
window in `dynrag.core.generative.tournament`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from dynrag.core.constants import DEFAULT_PROMPT_FORMAT
from dynrag.core.generative.backends.base import (
    Backend,
    GenerationRequest,
    GrammarSpec,
    SamplingParams,
)
from dynrag.core.generative.parsing import parse_selection
from dynrag.core.generative.prompts import PromptFormat, get_prompt_format
from dynrag.core.generative.tournament import first_round, next_round
from dynrag.core.interface import Reranker
from dynrag.core.passages import count_tokens_bounded, cut_passages, cut_text
from dynrag.core.policy import SelectionPolicy
from dynrag.core.presort import check_presort, presort_ranking, with_presort_scores
from dynrag.core.types import ParseResult, ParseStatus, Passage, Selection, no_candidates

__all__ = ["GenerativeReranker"]

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    """One generation: a query and some of its candidates (global positions)."""

    query_index: int
    candidates: list[int]
    final: bool


@dataclass
class _QueryState:
    query: str
    passages: list[Passage]
    """The candidates in the order the model reads them (after any presort)."""
    shown: list[Passage]
    policy: SelectionPolicy
    order: list[int]
    """``order[i]``: the caller's position of ``passages[i]``."""
    raw: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    calls: int = 0
    parsed: ParseResult | None = None
    final_candidates: list[int] = field(default_factory=list)


class GenerativeReranker(Reranker):
    """Reads a query and its candidates and returns the passages needed, best first.

    The model writes ids such as ``[3], [1], [7]`` (or ``None``); constrained decoding keeps it
    inside that grammar, `dynrag.core.generative.parsing.parse_selection` reads the text, and the
    `SelectionPolicy` bounds the result. The same input always gives the same selection
    (greedy decoding).

    With ``presort`` set, the candidates are first put in that order (e.g. BM25), and
    "retrieval order" below means that order.

    More candidates than ``window_size``: a **tournament**. The candidates are cut into windows
    of ``window_size`` in retrieval order; the model selects within each window (window ids are
    mapped back to positions in the whole list); the survivors, in retrieval order, go to another
    round, until they fit one window, where the final order and k are chosen. A window whose
    output cannot be parsed passes all its candidates on, so nothing is lost.

    Example:
        >>> rr = GenerativeReranker.from_pretrained("dynrag-smollm2-135m")  # doctest: +SKIP
        >>> sel = rr.rerank("Who wrote Hamlet?", ["Hamlet is a play by Shakespeare.", "..."])
        >>> sel.indices, sel.k, sel.status  # doctest: +SKIP
    """

    kind = "generative"

    def __init__(
        self,
        backend: Backend,
        *,
        prompt_format: str | PromptFormat = DEFAULT_PROMPT_FORMAT,
        policy: SelectionPolicy | None = None,
        max_passage_tokens: int = 256,
        max_query_tokens: int = 256,
        max_title_tokens: int = 32,
        window_size: int | None = None,
        constrained: bool = True,
        max_new_tokens: int | None = None,
        presort: str | None = None,
    ) -> None:
        """Build a reranker over a loaded backend.

        Args:
            backend: How tokens are produced (e.g. `TransformersBackend`).
            prompt_format: A registered prompt format name, or a `PromptFormat`.
            policy: Bounds and fallbacks (`SelectionPolicy`); the default allows any k.
            max_passage_tokens: Each passage is cut to this many tokens before prompting.
            max_query_tokens: The query is cut to this many tokens (a warning and a note say so),
                so that no query builds a prompt past the model's context.
            max_title_tokens: Each title is cut to this many tokens.
            window_size: Candidates shown at once (default: the prompt format's).
            constrained: Restrict decoding to the selection grammar where the backend can.
            max_new_tokens: Cap on generated tokens (default: enough for every id, or 100 when
                unconstrained).
            presort: ``"bm25"``, ``"minilm"`` or ``"hybrid"`` puts the candidates in that
                first-stage order (query against the candidates) before the model reads them,
                as the model was trained (`dynrag.core.presort`); ``None`` keeps the caller's
                order. Selections index the caller's list either way.
        """
        for label, value in (
            ("max_passage_tokens", max_passage_tokens),
            ("max_query_tokens", max_query_tokens),
            ("max_title_tokens", max_title_tokens),
        ):
            if value < 1:
                msg = f"{label} must be at least 1, got {value}"
                raise ValueError(msg)
        self.backend = backend
        self.prompt_format = get_prompt_format(prompt_format)
        self.policy = policy or SelectionPolicy()
        self.max_passage_tokens = max_passage_tokens
        self.max_query_tokens = max_query_tokens
        self.max_title_tokens = max_title_tokens
        self.window_size = window_size or self.prompt_format.window_size
        if self.window_size < 2:
            msg = f"window_size must be at least 2, got {self.window_size}"
            raise ValueError(msg)
        self.constrained = constrained
        self.max_new_tokens = max_new_tokens
        self.presort = check_presort(presort)
        if self.prompt_format.uses_scores and self.presort is None:
            msg = (
                f"prompt format {self.prompt_format.name!r} shows first-stage scores: "
                "give a presort (bm25, minilm or hybrid)"
            )
            raise ValueError(msg)
        self.name_or_path: str | None = None
        """What the reranker was loaded from (set by `from_pretrained`)."""

    # -- the family's work -----------------------------------------------------------------
    def _rerank_batch(
        self,
        queries: list[str],
        passages_per_query: list[list[Passage]],
        policy: SelectionPolicy,
    ) -> list[Selection]:
        """Generated in batches (windows of all queries together); same results as one by one."""
        start = time.perf_counter()
        states = [
            self._prepare(q, ps, policy) for q, ps in zip(queries, passages_per_query, strict=True)
        ]
        jobs = [job for i, st in enumerate(states) for job in self._first_jobs(i, st)]
        while jobs:
            outputs = self._run(jobs, states)
            jobs = self._next_jobs(jobs, outputs, states)
        elapsed = time.perf_counter() - start
        return [self._finish(st, elapsed / max(len(states), 1)) for st in states]

    # -- steps -----------------------------------------------------------------------------
    def _prepare(self, query: str, given: list[Passage], policy: SelectionPolicy) -> _QueryState:
        notes: list[str] = []
        prompt_query, query_cut = cut_text(query, self.backend.truncate, self.max_query_tokens)
        if query_cut:  # unexpected: a question is short; say so
            logger.warning(
                "query of %d characters cut to %d tokens (max_query_tokens)",
                len(query),
                self.max_query_tokens,
            )
            notes.append(f"query cut to {self.max_query_tokens} tokens")
        order, scores = presort_ranking(self.presort, prompt_query, given)
        items = [given[i] for i in order]
        scored = items
        if self.prompt_format.uses_scores and scores is not None:
            scored = with_presort_scores(items, scores)
        shown, cut = cut_passages(
            scored,
            self.backend.truncate,
            self.max_passage_tokens,
            max_title_tokens=self.max_title_tokens,
        )
        if cut:  # expected (models are trained with a passage limit): not a warning
            logger.info(
                "truncated %d of %d passages to %d tokens (titles to %d)",
                cut,
                len(items),
                self.max_passage_tokens,
                self.max_title_tokens,
            )
        return _QueryState(
            query=prompt_query,
            passages=items,
            shown=shown,
            policy=policy,
            order=order,
            notes=notes,
        )

    def _first_jobs(self, index: int, st: _QueryState) -> list[_Job]:
        windows, final = first_round(len(st.passages), self.window_size)
        return [_Job(index, w, final=final) for w in windows]

    def _request(self, job: _Job, st: _QueryState) -> GenerationRequest:
        shown = [st.shown[i] for i in job.candidates]
        grammar = None
        if self.constrained:
            pol = st.policy
            grammar = GrammarSpec(
                fmt=self.prompt_format,
                num_candidates=len(shown),
                max_k=pol.max_k,
                min_k=pol.min_k if job.final else 0,
                allow_none=pol.allow_empty or not job.final,
            )
        return GenerationRequest(self.prompt_format.messages(st.query, shown), grammar)

    def _max_new_tokens(self, caps: list[int | None]) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if not self.constrained:
            return 100
        cap = max(self.window_size if c is None else min(c, self.window_size) for c in caps)
        return self.prompt_format.output_tokens(cap, self.window_size)

    def _run(self, jobs: list[_Job], states: list[_QueryState]) -> list[str]:
        requests = [self._request(job, states[job.query_index]) for job in jobs]
        caps = [states[job.query_index].policy.max_k for job in jobs]
        params = SamplingParams(max_new_tokens=self._max_new_tokens(caps))
        outputs = self.backend.generate(requests, params)
        return [texts[0] if texts else "" for texts in outputs]

    def _next_jobs(
        self, jobs: list[_Job], outputs: list[str], states: list[_QueryState]
    ) -> list[_Job]:
        # Per query: the round's windows and what each kept (None: unparseable).
        rounds: dict[int, tuple[list[list[int]], list[list[int] | None]]] = {}
        for job, text in zip(jobs, outputs, strict=True):
            st = states[job.query_index]
            st.raw.append(text)
            st.calls += 1
            parsed = parse_selection(text, len(job.candidates))
            if job.final:
                st.parsed = parsed
                st.final_candidates = job.candidates
                continue
            windows, choices = rounds.setdefault(job.query_index, ([], []))
            windows.append(job.candidates)
            unusable = parsed.status == ParseStatus.UNPARSEABLE
            choices.append(None if unusable else [job.candidates[i] for i in parsed.indices])
        next_jobs: list[_Job] = []
        for index, (windows, choices) in rounds.items():
            st = states[index]
            outcome = next_round(windows, choices, self.window_size)
            st.notes.extend(outcome.notes)
            if outcome.unparseable:
                st.parsed = ParseResult(status=ParseStatus.UNPARSEABLE)
                st.final_candidates = []
            elif outcome.decided is not None:
                status = ParseStatus.REPAIRED if outcome.decided else ParseStatus.NONE
                st.parsed = ParseResult(indices=list(range(len(outcome.decided))), status=status)
                st.final_candidates = outcome.decided
            else:
                next_jobs.extend(_Job(index, w, final=outcome.final) for w in outcome.windows)
        return next_jobs

    def _finish(self, st: _QueryState, seconds: float) -> Selection:
        n = len(st.passages)
        if n == 0:
            return no_candidates(seconds)
        parsed = st.parsed or ParseResult(status=ParseStatus.UNPARSEABLE)
        global_parse = parsed.model_copy(
            update={
                "indices": [st.final_candidates[i] for i in parsed.indices],
                "notes": [*st.notes, *parsed.notes],
            }
        )
        outcome = st.policy.apply(global_parse, st.passages, self._passage_tokens)
        return Selection(
            indices=[st.order[i] for i in outcome.indices],
            passages=[st.passages[i] for i in outcome.indices],
            raw_output="\n".join(st.raw),
            shown_order=None if self.presort is None else list(st.order),
            status=outcome.status,
            notes=outcome.notes,
            num_candidates=n,
            rerank_seconds=seconds,
            model_calls=st.calls,
        )

    def _passage_tokens(self, passage: Passage) -> int:
        text = passage.text if not passage.title else f"{passage.title}\n{passage.text}"
        return count_tokens_bounded(self.backend.count_tokens, text)
