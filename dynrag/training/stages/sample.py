"""``sample``: ``sample.n`` selections per training question from the run's current model.

Reads the training questions; writes ``sample/samples.jsonl``, one record per question with
its samples, appended as they come (an interrupted run resumes after the last whole line).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from dynrag.data.jsonl import append_jsonl, read_jsonl
from dynrag.training.config import StrictSettings
from dynrag.training.stages.base import (
    StageContext,
    StageSpec,
    done_ids,
    latest_model_before,
)

if TYPE_CHECKING:
    from dynrag.data.examples import QAExample

__all__ = ["STAGE", "SampleConfig", "sample_selections"]

logger = logging.getLogger(__name__)


class SampleConfig(StrictSettings):
    """Selections sampled from the run's current model for each training question."""

    n: int = Field(default=8, ge=2, description="Samples per question.")
    temperature: float = Field(default=0.7, gt=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    constrained: bool = Field(default=True, description="Decode inside the selection grammar.")
    limit: int | None = Field(default=None, ge=1, description="At most this many questions.")
    backend: Literal["auto", "transformers", "vllm"] = Field(
        default="auto", description="'auto': vLLM when installed with a GPU, else transformers."
    )
    batch_size: int | None = Field(default=None, ge=1, description="Prompts per batch.")


def _sampling_reranker(model: str, ctx: StageContext) -> Any:
    from dynrag.core.generative.reranker import GenerativeReranker
    from dynrag.training.causal_lm.models import choose_backend, merge_checkpoint

    cfg = ctx.config
    settings: SampleConfig = ctx.settings
    backend = choose_backend(settings.backend)
    kwargs: dict[str, Any] = {}
    if backend == "transformers":
        kwargs["batch_size"] = settings.batch_size
    else:  # vLLM loads full weights: merge an adapter once
        model = str(merge_checkpoint(model, ctx.dir / "merged-model"))
        kwargs["gpu_memory_utilization"] = 0.4
    return GenerativeReranker.from_pretrained(
        model,
        device=cfg.device,
        backend=backend,
        max_passage_tokens=cfg.max_passage_tokens,
        window_size=cfg.max_candidates,
        prompt_format=cfg.prompt_format,
        **kwargs,
    )


def sample_selections(
    reranker: Any,
    examples: list[QAExample],
    *,
    n: int,
    temperature: float,
    top_p: float = 1.0,
    constrained: bool = True,
    seed: int | None = None,
) -> list[list[dict[str, Any]]]:
    """``n`` sampled selections per example from a `GenerativeReranker`'s model.

    Each sample is ``{"text", "indices", "status"}``; indices are 0-based and parsed with the
    same parser as inference (never raises; unreadable text has status ``fallback``).
    """
    from dynrag.core.generative.backends.base import GenerationRequest, GrammarSpec, SamplingParams
    from dynrag.core.generative.parsing import parse_selection
    from dynrag.training.causal_lm.data import PromptBuilder

    fmt = reranker.prompt_format
    builder = PromptBuilder(reranker.backend.tokenizer, fmt, reranker.max_passage_tokens)
    requests = []
    for ex in examples:
        grammar = GrammarSpec(fmt=fmt, num_candidates=len(ex.passages)) if constrained else None
        requests.append(GenerationRequest(builder.messages(ex.question, ex.passages), grammar))
    longest = max(len(ex.passages) for ex in examples)
    params = SamplingParams(
        max_new_tokens=8 + 5 * longest, temperature=temperature, top_p=top_p, n=n, seed=seed
    )
    outputs = reranker.backend.generate(requests, params)
    result = []
    for ex, texts in zip(examples, outputs, strict=True):
        samples = []
        for text in texts:
            parsed = parse_selection(text, len(ex.passages))
            samples.append(
                {"text": text, "indices": list(parsed.indices), "status": parsed.status.value}
            )
        result.append(samples)
    return result


def _run(ctx: StageContext) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from dynrag.training.questions import load_train_examples

    cfg = ctx.config
    settings: SampleConfig = ctx.settings
    model = ctx.start or cfg.model
    out = ctx.dir / "samples.jsonl"
    examples = load_train_examples(cfg, limit=settings.limit)
    done = done_ids(out)
    todo = [ex for ex in examples if ex.id not in done]
    if done:
        logger.info("sample: %d questions already sampled, %d to go", len(done), len(todo))
    reranker = _sampling_reranker(model, ctx)
    chunk = 4
    with tqdm(total=len(examples), initial=len(done), desc="sample") as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            sampled = sample_selections(
                reranker,
                part,
                n=settings.n,
                temperature=settings.temperature,
                top_p=settings.top_p,
                constrained=settings.constrained,
                seed=cfg.seed + len(done) + start,
            )
            records = [
                {
                    "id": ex.id,
                    "question": ex.question,
                    "answers": ex.answers,
                    "gold": ex.gold,
                    "passages": [p.model_dump() for p in ex.passages],
                    "samples": samples,
                }
                for ex, samples in zip(part, sampled, strict=True)
            ]
            append_jsonl(out, records)
            bar.update(len(part))
    all_k = [len(s["indices"]) for r in read_jsonl(out) for s in r["samples"]]
    return {"samples": str(out), "model": model, "mean_k": sum(all_k) / max(len(all_k), 1)}


STAGE = StageSpec(
    name="sample",
    help="sample n selections per training question from the run's current model",
    run=_run,
    settings=SampleConfig,
    reads_data=True,
    start=latest_model_before("dpo"),
    output="samples.jsonl",
    main_process_only=True,
)
