"""`DynamicReranker`: a query and N passages in, the needed passages (order and k) out."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynrag.core.backends.base import Backend, GenerationRequest, GrammarSpec, SamplingParams
from dynrag.core.parsing import ParseResult, ParseStatus, parse_selection
from dynrag.core.policy import SelectionPolicy
from dynrag.core.presort import check_presort, presort_ranking, with_presort_scores
from dynrag.core.prompts import PromptFormat, get_prompt_format
from dynrag.core.types import Passage, PassageLike, Selection, SelectionStatus, to_passages

__all__ = ["DynamicReranker"]

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


_VLLM_OPTIONS = (
    "tensor_parallel_size",
    "enable_prefix_caching",
    "max_model_len",
    "gpu_memory_utilization",
)
_OPENAI_OPTIONS = (
    "base_url",
    "api_key",
    "structured_output",
    "tokenizer",
    "timeout",
    "max_retries",
    "max_concurrency",
)


def _pop(kwargs: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {name: kwargs.pop(name) for name in names if name in kwargs}


class DynamicReranker:
    """Reads a query and its candidates and returns the passages needed, best first.

    The model writes ids such as ``[3], [1], [7]`` (or ``None``); constrained decoding keeps it
    inside that grammar, `dynrag.core.parsing.parse_selection` reads the text, and the
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
        >>> rr = DynamicReranker.from_pretrained("dynrag-smollm2-135m")  # doctest: +SKIP
        >>> sel = rr.rerank("Who wrote Hamlet?", ["Hamlet is a play by Shakespeare.", "..."])
        >>> sel.indices, sel.k, sel.status  # doctest: +SKIP
    """

    def __init__(
        self,
        backend: Backend,
        *,
        prompt_format: str | PromptFormat = "dynamicrag-v1",
        policy: SelectionPolicy | None = None,
        max_passage_tokens: int = 256,
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
            window_size: Candidates shown at once (default: the prompt format's).
            constrained: Restrict decoding to the selection grammar where the backend can.
            max_new_tokens: Cap on generated tokens (default: enough for every id, or 100 when
                unconstrained).
            presort: ``"bm25"``, ``"minilm"`` or ``"hybrid"`` puts the candidates in that
                first-stage order (query against the candidates) before the model reads them,
                as the model was trained (`dynrag.core.presort`); ``None`` keeps the caller's
                order. Selections index the caller's list either way.
        """
        if max_passage_tokens < 1:
            msg = f"max_passage_tokens must be at least 1, got {max_passage_tokens}"
            raise ValueError(msg)
        self.backend = backend
        self.prompt_format = get_prompt_format(prompt_format)
        self.policy = policy or SelectionPolicy()
        self.max_passage_tokens = max_passage_tokens
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

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        prompt_format: str | PromptFormat | None = None,
        backend: str = "transformers",
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> DynamicReranker:
        """Load a reranker from a local folder, a bundled name or a Hugging Face id.

        Args:
            name_or_path: A model folder, a bundled name (``dynrag-smollm2-135m``, the trained
                default, or ``smollm2-135m-instruct``, its untrained base), a hub id such as
                ``gasolsun/DynamicRAG-8B``, or the URL of a ``dynrag serve`` server.
            device: ``cpu``, ``cuda``, ``cuda:1``...; default CUDA when available.
            dtype: ``float32`` or ``bfloat16`` (default bfloat16 on GPU, float32 on CPU).
            prompt_format: Override the format recorded in the model's ``dynrag_config.json``.
            backend: ``transformers`` (CPU/GPU, in process), ``vllm`` (GPU, in process; takes
                ``tensor_parallel_size``, ``enable_prefix_caching``, ``max_model_len``,
                ``gpu_memory_utilization``) or ``openai`` (any OpenAI-compatible server; takes
                ``base_url``, ``api_key``, ``structured_output``, ``tokenizer``, ``timeout``,
                ``max_retries``, ``max_concurrency``; ``name_or_path`` is the served name).
            batch_size: Prompts per generation batch (default: 8 on GPU, 1 on CPU, where
                batching does not pay; see benchmarks/bench_rerank.py).
            **kwargs: Passed to `DynamicReranker.__init__` (``policy``, ``max_passage_tokens``,
                ``window_size``, ``constrained``...), or policy fields (``min_k``, ``max_k``,
                ``allow_empty``, ``fallback_k``, ``token_budget``) to build the policy.
        """
        from dynrag.core.loading import RELEASED_CHECKPOINTS, ModelConfig, resolve_model

        policy_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in SelectionPolicy.model_fields}
        if policy_kw and "policy" in kwargs:
            msg = "pass either policy= or policy fields such as max_k=, not both"
            raise ValueError(msg)
        name = str(name_or_path)
        engine: Backend
        if name.startswith(("http://", "https://")):
            from dynrag.serve.remote import RemoteReranker

            return RemoteReranker(name, **kwargs)
        if backend == "transformers":
            from dynrag.core.backends.transformers import TransformersBackend

            resolved = resolve_model(name_or_path)
            cfg = resolved.config
            engine = TransformersBackend.from_pretrained(
                resolved.path, device=device, dtype=dtype, batch_size=batch_size
            )
        elif backend == "vllm":
            from dynrag.core.backends.vllm import VLLMBackend

            resolved = resolve_model(name_or_path)
            cfg = resolved.config
            engine_kw = _pop(kwargs, _VLLM_OPTIONS)
            engine = VLLMBackend(resolved.path, dtype=dtype, **engine_kw)
        elif backend == "openai":
            from dynrag.core.backends.openai import OpenAIBackend

            engine_kw = _pop(kwargs, _OPENAI_OPTIONS)
            if "base_url" not in engine_kw:
                msg = "backend='openai' needs base_url=, e.g. 'http://127.0.0.1:8000/v1'"
                raise ValueError(msg)
            engine = OpenAIBackend(model=name, **engine_kw)
            cfg = RELEASED_CHECKPOINTS.get(name) or ModelConfig()
        else:
            msg = f"unknown backend {backend!r}; use 'transformers', 'vllm' or 'openai'"
            raise ValueError(msg)
        if "policy" not in kwargs:
            if cfg.max_k is not None:  # what the model was trained to write, unless overridden
                policy_kw.setdefault("max_k", cfg.max_k)
            kwargs["policy"] = SelectionPolicy(**policy_kw)
        kwargs.setdefault("window_size", cfg.window_size)
        if cfg.max_passage_tokens:
            kwargs.setdefault("max_passage_tokens", cfg.max_passage_tokens)
        kwargs.setdefault("presort", cfg.presort)
        reranker = cls(engine, prompt_format=prompt_format or cfg.prompt_format, **kwargs)
        reranker.name_or_path = name
        return reranker

    # -- public API ------------------------------------------------------------------------
    def rerank(
        self,
        query: str,
        passages: Sequence[PassageLike],
        *,
        policy: SelectionPolicy | None = None,
    ) -> Selection:
        """Select the passages ``query`` needs, most useful first.

        Args:
            query: The question.
            passages: Candidates as `str`, `Passage`, or mappings with ``title``/``text``.
            policy: Override the reranker's policy for this call.

        Raises:
            ValueError: an empty or blank query.
            TypeError: a passage of another type (its position is named).
        """
        return self.rerank_batch([query], [passages], policy=policy)[0]

    async def arerank(
        self,
        query: str,
        passages: Sequence[PassageLike],
        *,
        policy: SelectionPolicy | None = None,
    ) -> Selection:
        """`rerank` without blocking the event loop (the model runs in a worker thread)."""
        return await asyncio.to_thread(self.rerank, query, passages, policy=policy)

    async def arerank_batch(
        self,
        queries: Sequence[str],
        passages_per_query: Sequence[Sequence[PassageLike]],
        *,
        policy: SelectionPolicy | None = None,
    ) -> list[Selection]:
        """`rerank_batch` without blocking the event loop."""
        return await asyncio.to_thread(
            self.rerank_batch, queries, passages_per_query, policy=policy
        )

    def rerank_batch(
        self,
        queries: Sequence[str],
        passages_per_query: Sequence[Sequence[PassageLike]],
        *,
        policy: SelectionPolicy | None = None,
    ) -> list[Selection]:
        """`rerank` for many queries, generated in batches; same results as one by one."""
        if isinstance(queries, str):
            msg = "queries must be a list of strings; use rerank() for one query"
            raise TypeError(msg)
        if len(queries) != len(passages_per_query):
            msg = (
                f"{len(queries)} queries but {len(passages_per_query)} passage lists; "
                "give one list of passages per query"
            )
            raise ValueError(msg)
        start = time.perf_counter()
        states = [
            self._prepare(q, ps, policy or self.policy)
            for q, ps in zip(queries, passages_per_query, strict=True)
        ]
        jobs = [job for i, st in enumerate(states) for job in self._first_jobs(i, st)]
        while jobs:
            outputs = self._run(jobs, states)
            jobs = self._next_jobs(jobs, outputs, states)
        elapsed = time.perf_counter() - start
        return [self._finish(st, elapsed / max(len(states), 1)) for st in states]

    # -- steps -----------------------------------------------------------------------------
    def _prepare(
        self, query: str, passages: Sequence[PassageLike], policy: SelectionPolicy
    ) -> _QueryState:
        if not isinstance(query, str):
            msg = f"query must be a string, not {type(query).__name__}"
            raise TypeError(msg)
        if not query.strip():
            msg = "query is empty; give the question the passages should answer"
            raise ValueError(msg)
        given = to_passages(passages)
        order, scores = presort_ranking(self.presort, query, given)
        items = [given[i] for i in order]
        scored = items
        if self.prompt_format.uses_scores and scores is not None:
            scored = with_presort_scores(items, scores)
        shown: list[Passage] = []
        cut = 0
        for p in scored:
            text, was_cut = self.backend.truncate(p.text, self.max_passage_tokens)
            cut += was_cut
            shown.append(p if not was_cut else p.model_copy(update={"text": text}))
        if cut:  # expected (models are trained with a passage limit): not a warning
            logger.info(
                "truncated %d of %d passages to %d tokens", cut, len(items), self.max_passage_tokens
            )
        return _QueryState(query=query, passages=items, shown=shown, policy=policy, order=order)

    def _first_jobs(self, index: int, st: _QueryState) -> list[_Job]:
        n = len(st.passages)
        if n == 0:
            return []
        if n <= self.window_size:
            return [_Job(index, list(range(n)), final=True)]
        return self._windows(index, list(range(n)))

    def _windows(self, index: int, candidates: list[int]) -> list[_Job]:
        count = math.ceil(len(candidates) / self.window_size)
        size = math.ceil(len(candidates) / count)  # even windows, none tiny
        return [
            _Job(index, candidates[i : i + size], final=False)
            for i in range(0, len(candidates), size)
        ]

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
        fmt = self.prompt_format
        per_id = len(fmt.id_open) + len(str(self.window_size)) + len(fmt.id_close)
        per_id += len(fmt.separator)
        cap = max(self.window_size if c is None else min(c, self.window_size) for c in caps)
        return max(cap * per_id, len(fmt.none_text)) + 2

    def _run(self, jobs: list[_Job], states: list[_QueryState]) -> list[str]:
        requests = [self._request(job, states[job.query_index]) for job in jobs]
        caps = [states[job.query_index].policy.max_k for job in jobs]
        params = SamplingParams(max_new_tokens=self._max_new_tokens(caps))
        outputs = self.backend.generate(requests, params)
        return [texts[0] if texts else "" for texts in outputs]

    def _next_jobs(
        self, jobs: list[_Job], outputs: list[str], states: list[_QueryState]
    ) -> list[_Job]:
        # Per query: the survivors of each window, in the model's order within that window.
        survivors: dict[int, list[list[int]]] = {}
        shown: dict[int, int] = {}
        for job, text in zip(jobs, outputs, strict=True):
            st = states[job.query_index]
            st.raw.append(text)
            st.calls += 1
            parsed = parse_selection(text, len(job.candidates))
            if job.final:
                st.parsed = parsed
                st.final_candidates = job.candidates
                continue
            shown[job.query_index] = shown.get(job.query_index, 0) + len(job.candidates)
            if parsed.status == ParseStatus.UNPARSEABLE:
                st.notes.append("a window's output was unparseable; all its candidates go on")
                survivors.setdefault(job.query_index, []).append(job.candidates)
            else:
                chosen = [job.candidates[i] for i in parsed.indices]
                survivors.setdefault(job.query_index, []).append(chosen)
        next_jobs: list[_Job] = []
        for index, per_window in survivors.items():
            st = states[index]
            kept = sorted(i for window in per_window for i in window)
            if not kept:
                st.parsed = ParseResult(status=ParseStatus.NONE, notes=["every window said None"])
                st.final_candidates = []
            elif len(kept) <= self.window_size:
                # The final round sees the survivors in retrieval order.
                next_jobs.append(_Job(index, kept, final=True))
            elif len(kept) < shown[index]:
                next_jobs.extend(self._windows(index, kept))
            else:
                # The round kept everything: another would not end. Interleave the windows'
                # rankings (every window's first choice, then every second...).
                order = [
                    w[r] for r in range(max(map(len, per_window))) for w in per_window if r < len(w)
                ]
                st.parsed = ParseResult(
                    indices=list(range(len(order))),
                    status=ParseStatus.REPAIRED,
                    notes=["windows kept every candidate; their rankings were interleaved"],
                )
                st.final_candidates = order
        return next_jobs

    def _finish(self, st: _QueryState, seconds: float) -> Selection:
        n = len(st.passages)
        if n == 0:
            return Selection(
                indices=[],
                passages=[],
                raw_output="",
                status=SelectionStatus.NONE,
                notes=["no candidates"],
                num_candidates=0,
                rerank_seconds=seconds,
            )
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
            status=outcome.status,
            notes=outcome.notes,
            num_candidates=n,
            rerank_seconds=seconds,
            model_calls=st.calls,
        )

    def _passage_tokens(self, passage: Passage) -> int:
        text = passage.text if not passage.title else f"{passage.title}\n{passage.text}"
        return self.backend.count_tokens(text)
