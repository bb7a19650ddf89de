"""A LlamaIndex LLM over dynrag's local generator (SmolLM2 by default), for offline examples.

LlamaIndex's own ``HuggingFaceLLM`` works too when you are online; this one needs no hub.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms import (
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_completion_callback

from dynrag.core.generative.answer_lm import AnswerGenerator


class LocalLLM(CustomLLM):
    """Greedy completions from a local causal LM through `dynrag.core.generative.answer_lm`."""

    model: str = "smollm2-135m-instruct"
    max_new_tokens: int = 48
    _generator: AnswerGenerator = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generator = AnswerGenerator.from_pretrained(
            self.model, max_new_tokens=self.max_new_tokens
        )

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            model_name=self.model, num_output=self.max_new_tokens, context_window=8192
        )

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._generator.chat([{"role": "user", "content": prompt}]))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        yield self.complete(prompt, formatted=formatted, **kwargs)
