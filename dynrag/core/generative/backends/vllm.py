"""In-process vLLM generation on GPUs: batched, prefix-cached, grammar-constrained.

Written against vLLM's documented offline API (``LLM.chat`` with ``SamplingParams``; the
selection grammar as a regex through ``StructuredOutputsParams`` on vLLM >= 0.10, or
``GuidedDecodingParams`` before). A regex cannot forbid a repeated id, so duplicates are dropped
after decoding by the parser. vllm does not install on our machines, so this module is covered
by tests that run only where vllm and CUDA are importable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dynrag.core.generative.backends.base import (
    GenerationRequest,
    GrammarSpec,
    HFTokenizerText,
    SamplingParams,
)
from dynrag.core.generative.constrained import selection_regex
from dynrag.core.generative.prompts import Message, render_chat
from dynrag.core.loading import ResolvedModel

__all__ = ["VLLMBackend"]


def _structured(grammar: GrammarSpec | None) -> dict[str, Any]:
    """The SamplingParams keyword that constrains output to the selection grammar."""
    if grammar is None:
        return {}
    regex = selection_regex(grammar)
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(regex=regex)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(regex=regex)}


class VLLMBackend(HFTokenizerText):
    """A model loaded by vLLM in this process."""

    name = "vllm"

    def __init__(
        self,
        model: str | Path,
        *,
        dtype: str | None = None,
        tensor_parallel_size: int = 1,
        enable_prefix_caching: bool = True,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        **engine_kwargs: Any,
    ) -> None:
        """Load ``model`` (a folder or hub id) with vLLM.

        Args:
            model: What vLLM loads.
            dtype: ``bfloat16`` (default ``auto``).
            tensor_parallel_size: GPUs to shard the model over.
            enable_prefix_caching: Reuse the KV cache of shared prompt prefixes (the system
                message and, across RL samples, the whole prompt).
            max_model_len: Context length cap.
            gpu_memory_utilization: Fraction of GPU memory vLLM may take.
            **engine_kwargs: Passed to ``vllm.LLM``.
        """
        try:
            from vllm import LLM
        except ImportError as err:
            msg = "the vLLM backend needs vllm on a CUDA machine: pip install 'dynrag[vllm]'"
            raise ImportError(msg) from err
        self.llm = LLM(
            model=str(model),
            dtype=dtype or "auto",
            tensor_parallel_size=tensor_parallel_size,
            enable_prefix_caching=enable_prefix_caching,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            **engine_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()

    @classmethod
    def load(
        cls,
        model: ResolvedModel,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        **options: Any,
    ) -> VLLMBackend:
        """Load a resolved model folder with vLLM; ``options`` are `__init__`'s.

        vLLM schedules its own batches (``batch_size`` is not used) and places the model on
        the GPUs itself; ``device`` other than CUDA is refused.

        Raises:
            ValueError: ``device`` is not a CUDA device, or the folder holds a LoRA adapter
                (merge it first: ``dynrag-train`` writes merged checkpoints for vLLM).
        """
        if device is not None and not str(device).startswith("cuda"):
            msg = f"the vLLM backend runs on CUDA GPUs, not {device!r}"
            raise ValueError(msg)
        if model.config.adapter or (model.path / "adapter_config.json").is_file():
            msg = (
                f"{model.path} holds a LoRA adapter; vLLM needs merged weights "
                "(use backend='transformers', or merge the adapter into its base)"
            )
            raise ValueError(msg)
        del batch_size
        return cls(model.path, dtype=dtype, **options)

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[list[str]]:
        """All requests in one vLLM call (vLLM batches and schedules them)."""
        from vllm import SamplingParams as VllmSampling

        sampling = [
            VllmSampling(
                n=params.n,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_new_tokens,
                seed=params.seed,
                **_structured(r.grammar),
            )
            for r in requests
        ]
        outputs = self.llm.chat([r.messages for r in requests], sampling, use_tqdm=False)
        return [[c.text.strip() for c in out.outputs] for out in outputs]

    def continuation_logprob(self, messages: Sequence[Message], continuation: str) -> float:
        """Mean log-probability per token of ``continuation`` after the prompt (teacher-forced).

        One prefill through vLLM with ``prompt_logprobs``; no decoding. Same contract as
        `TransformersBackend.continuation_logprob`.

        Raises:
            ValueError: an empty continuation.
        """
        from vllm import SamplingParams as VllmSampling

        prompt_ids = self.tokenizer(
            render_chat(self.tokenizer, messages), add_special_tokens=False
        )["input_ids"]
        cont_ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not cont_ids:
            msg = "the continuation is empty"
            raise ValueError(msg)
        ids = list(prompt_ids) + list(cont_ids)
        out = self.llm.generate(
            [{"prompt_token_ids": ids}],
            VllmSampling(max_tokens=1, prompt_logprobs=0),
            use_tqdm=False,
        )[0]
        scores = out.prompt_logprobs or []
        picked = [scores[j][ids[j]].logprob for j in range(len(prompt_ids), len(ids))]
        return float(sum(picked) / len(picked))
