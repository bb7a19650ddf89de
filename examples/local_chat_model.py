"""A LangChain chat model over dynrag's local generator (SmolLM2 by default), no hub needed.

langchain-huggingface's ``ChatHuggingFace`` over a ``HuggingFacePipeline`` works for sync calls
but raises on ``ainvoke``; this small model supports both (async runs in a worker thread).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from dynrag.core.generative.answer_lm import AnswerGenerator

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


class LocalChatModel(BaseChatModel):
    """Greedy chat completions from a local causal LM through `dynrag.core.generative.answer_lm`."""

    model: str = "smollm2-135m-instruct"
    max_new_tokens: int = 48
    _generator: AnswerGenerator = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generator = AnswerGenerator.from_pretrained(
            self.model, max_new_tokens=self.max_new_tokens
        )

    @property
    def _llm_type(self) -> str:
        return "dynrag-local"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        chat = [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]
        text = self._generator.chat(chat)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def local_chat_model(
    name: str = "smollm2-135m-instruct", max_new_tokens: int = 48
) -> LocalChatModel:
    """A `LocalChatModel` for ``name`` (folder, bundled name or hub id)."""
    return LocalChatModel(model=name, max_new_tokens=max_new_tokens)
