"""The answer generator: a causal LM answering from selected passages (greedy by default)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dynrag.core.generative.backends.base import Backend, GenerationRequest, SamplingParams
from dynrag.core.generative.prompts import GENERATOR_V1, GeneratorFormat, Message
from dynrag.core.passages import cut_passages
from dynrag.core.types import PassageLike, to_passages

__all__ = ["AnswerGenerator"]


class AnswerGenerator:
    """Answers questions from passages with the released checkpoints' generator prompt.

    Also a plain chat model (`chat`), which is what framework adapters of a local LLM need.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        prompt: GeneratorFormat = GENERATOR_V1,
        max_new_tokens: int = 64,
        max_passage_tokens: int = 256,
    ) -> None:
        """Wrap a loaded backend.

        Args:
            backend: How tokens are produced.
            prompt: The generator prompt (default: the released checkpoints', short answers).
            max_new_tokens: Cap on the answer's tokens.
            max_passage_tokens: Each passage is cut to this many tokens.
        """
        self.backend = backend
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.max_passage_tokens = max_passage_tokens

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> AnswerGenerator:
        """Load a causal LM from a folder, a bundled name or a Hugging Face id."""
        from dynrag.core.generative.backends.transformers import TransformersBackend

        backend = TransformersBackend.from_pretrained(
            name_or_path, device=device, dtype=dtype, batch_size=batch_size
        )
        return cls(backend, **kwargs)

    def messages(
        self, question: str, passages: Sequence[PassageLike], ids: Sequence[int] | None = None
    ) -> list[Message]:
        """The chat messages asking for an answer from ``passages`` (each cut to the limit)."""
        items, _ = cut_passages(
            to_passages(passages), self.backend.truncate, self.max_passage_tokens
        )
        return self.prompt.messages(question, items, ids)

    def answer_batch(
        self,
        questions: Sequence[str],
        passages_per_question: Sequence[Sequence[PassageLike]],
        ids_per_question: Sequence[Sequence[int] | None] | None = None,
    ) -> list[str]:
        """Greedy answers, one per question, from its passages (in the order given)."""
        ids_list = ids_per_question or [None] * len(questions)
        requests = [
            GenerationRequest(self.messages(q, ps, ids))
            for q, ps, ids in zip(questions, passages_per_question, ids_list, strict=True)
        ]
        outputs = self.backend.generate(requests, SamplingParams(self.max_new_tokens))
        return [texts[0] for texts in outputs]

    def answer(
        self, question: str, passages: Sequence[PassageLike], ids: Sequence[int] | None = None
    ) -> str:
        """A greedy answer to ``question`` from ``passages``."""
        return self.answer_batch([question], [passages], [ids])[0]

    def chat(self, messages: Sequence[Message], max_new_tokens: int | None = None) -> str:
        """Free text for chat messages (greedy)."""
        params = SamplingParams(max_new_tokens or self.max_new_tokens)
        return self.backend.generate([GenerationRequest(list(messages))], params)[0][0]
