"""Generation with Hugging Face transformers, on CPU or GPU, with constrained decoding."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessorList, PreTrainedModel

from dynrag.core.generative.backends.base import GenerationRequest, HFTokenizerText, SamplingParams
from dynrag.core.generative.constrained import (
    SelectionConstraint,
    SelectionGrammar,
    SelectionLogitsProcessor,
)
from dynrag.core.generative.prompts import Message, render_chat
from dynrag.core.loading import ResolvedModel, load_causal_lm, resolve_model

__all__ = ["TransformersBackend", "render_chat", "resolve_device", "resolve_dtype"]
# render_chat lives in dynrag.core.generative.prompts; re-exported here for older imports.

logger = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None`` means bfloat16 on GPU and float32 on CPU.

    Raises:
        ValueError: an unknown dtype name.
    """
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[dtype.lower()]
    except KeyError:
        msg = f"unknown dtype {dtype!r}; use one of {', '.join(sorted(_DTYPES))}"
        raise ValueError(msg) from None


class TransformersBackend(HFTokenizerText):
    """A causal LM from transformers. Thread-safe: one generation runs at a time per backend."""

    name = "transformers"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: Any,
        *,
        batch_size: int = 8,
    ) -> None:
        """Wrap an already loaded model and tokenizer.

        Args:
            model: A causal LM.
            tokenizer: Its tokenizer; padding is set to the left here.
            batch_size: Prompts per forward batch in `generate`.
        """
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_token_ids = self._eos_ids()
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model: ResolvedModel,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int | None = None,
    ) -> TransformersBackend:
        """Load a resolved model (a LoRA adapter is merged into its base).

        ``batch_size`` defaults to 8 on GPU and 1 on CPU: on CPU reading the prompt is
        compute-bound, so batching saves nothing and padding costs 15-30% (benchmarks/).
        """
        dev = resolve_device(device)
        lm, tokenizer = load_causal_lm(model, dtype=resolve_dtype(dtype, dev))
        if batch_size is None:
            batch_size = 8 if dev.type == "cuda" else 1
        lm.to(dev)
        return cls(lm, tokenizer, batch_size=batch_size)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int | None = None,
    ) -> TransformersBackend:
        """`load` a model folder, bundled name or hub id (see `dynrag.core.loading`)."""
        return cls.load(
            resolve_model(name_or_path), device=device, dtype=dtype, batch_size=batch_size
        )

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        for value in (gen_eos, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.append(value)
            elif isinstance(value, (list, tuple)):
                ids.extend(int(v) for v in value)
        if not ids:
            msg = "the model has no end-of-sequence token; set tokenizer.eos_token"
            raise ValueError(msg)
        return list(dict.fromkeys(ids))

    # -- text ------------------------------------------------------------------------------
    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text: the chat template when the tokenizer has one, else plain turns."""
        return render_chat(self.tokenizer, messages)

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[list[str]]:
        """Complete each request ``params.n`` times, in batches with left padding.

        Requests are sorted by length so each batch pads little; results come back in order.
        """
        prompts = [self.render(r.messages) for r in requests]
        lengths = [self.count_tokens(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        results: list[list[str]] = [[] for _ in prompts]
        with self._lock:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                texts = self._generate_batch(
                    [prompts[i] for i in batch], [requests[i] for i in batch], params
                )
                for j, i in enumerate(batch):
                    results[i] = texts[j * params.n : (j + 1) * params.n]
        return results

    @torch.inference_mode()
    def continuation_logprob(self, messages: Sequence[Message], continuation: str) -> float:
        """Mean log-probability per token of ``continuation`` after the prompt (teacher-forced).

        One forward pass over prompt + continuation; no decoding.

        Raises:
            ValueError: an empty continuation.
        """
        prompt_ids = self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
        cont_ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not cont_ids:
            msg = "the continuation is empty"
            raise ValueError(msg)
        ids = torch.tensor([prompt_ids + cont_ids], device=self.device)
        with self._lock:
            logits = self.model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        picked = logprobs.gather(1, torch.tensor(cont_ids, device=self.device)[:, None])
        return float(picked.mean())

    @torch.inference_mode()
    def _generate_batch(
        self, prompts: list[str], requests: list[GenerationRequest], params: SamplingParams
    ) -> list[str]:
        enc = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        prompt_length = enc["input_ids"].shape[1]
        processors = LogitsProcessorList()
        grammars = [r.grammar for r in requests]
        if any(g is not None for g in grammars):
            if not all(g is not None for g in grammars):
                msg = "a batch must be all constrained or all free"
                raise ValueError(msg)
            first = grammars[0]
            assert first is not None
            grammar = SelectionGrammar.for_tokenizer(self.tokenizer, first.fmt)
            constraints = [
                SelectionConstraint(g) for g in grammars if g is not None for _ in range(params.n)
            ]
            processors.append(
                SelectionLogitsProcessor(grammar, constraints, self.eos_token_ids, prompt_length)
            )
        sampling = params.temperature > 0
        out = self.model.generate(
            **enc,
            max_new_tokens=params.max_new_tokens,
            do_sample=sampling,
            temperature=params.temperature if sampling else None,
            top_p=params.top_p if sampling else None,
            top_k=None,
            num_return_sequences=params.n,
            logits_processor=processors,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_token_ids,
        )
        new_tokens = out[:, prompt_length:]
        return [
            text.strip()
            for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ]
