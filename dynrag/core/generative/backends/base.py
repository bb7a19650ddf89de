"""What every backend provides: token counting and (optionally constrained) generation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from dynrag.core.generative.prompts import Message, PromptFormat

__all__ = [
    "Backend",
    "GenerationRequest",
    "GrammarSpec",
    "HFTokenizerText",
    "SamplingParams",
    "ScoringBackend",
]


@dataclass(frozen=True)
class GrammarSpec:
    """The selection grammar one generation must follow (`dynrag.core.generative.constrained`)."""

    fmt: PromptFormat
    """Whose ids, separator and none text."""
    num_candidates: int
    """Valid ids are ``1..num_candidates``."""
    max_k: int | None = None
    """At most this many ids."""
    min_k: int = 0
    """At least this many ids."""
    allow_none: bool = True
    """Whether the none text may be written."""

    @property
    def cap(self) -> int:
        """The most ids that may be written (``max_k`` within the candidates)."""
        cap = self.num_candidates if self.max_k is None else min(self.max_k, self.num_candidates)
        return max(cap, 0)

    @property
    def floor(self) -> int:
        """The fewest ids before the end (``min_k`` within the cap)."""
        return min(max(self.min_k, 0), self.cap)

    @property
    def none_allowed(self) -> bool:
        """Whether the none text is a valid output (or the only one, with nothing to choose)."""
        return (self.allow_none and self.min_k == 0) or self.cap == 0

    @property
    def repeats(self) -> tuple[int, int]:
        """How many ``separator item`` may follow the first item: ``(least, most)``."""
        return max(self.floor, 1) - 1, self.cap - 1


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to complete."""

    messages: list[Message]
    """Chat messages; the backend renders them with the model's chat template."""
    grammar: GrammarSpec | None = None
    """Constrain the output to this grammar, or None for free text."""


@dataclass(frozen=True)
class SamplingParams:
    """How tokens are picked. ``temperature == 0`` is greedy decoding (the default)."""

    max_new_tokens: int = 100
    """Upper bound on generated tokens."""
    temperature: float = 0.0
    """0 for greedy; above 0 samples."""
    top_p: float = 1.0
    """Nucleus sampling mass when sampling."""
    n: int = 1
    """Completions per request (for RL sampling)."""
    seed: int | None = None
    """Seed for sampling, for reproducible samples."""


@runtime_checkable
class Backend(Protocol):
    """How tokens are produced. Backends know nothing of ranking; prompts come in as messages."""

    name: str

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes."""
        ...

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """``text`` cut to at most ``max_tokens`` tokens, and whether it was cut."""
        ...

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[list[str]]:
        """Complete each request ``params.n`` times; returns the texts, one list per request."""
        ...


@runtime_checkable
class ScoringBackend(Backend, Protocol):
    """A backend that can also score a given continuation (teacher-forced, no decoding).

    The gold-answer likelihood reward and ``dynrag eval``'s answer likelihood need it; the
    in-process backends (transformers, vLLM) have it, a chat-completions server does not.
    """

    def continuation_logprob(self, messages: Sequence[Message], continuation: str) -> float:
        """Mean log-probability per token of ``continuation`` after the rendered prompt."""
        ...


class HFTokenizerText:
    """`count_tokens` and `truncate` with the Hugging Face tokenizer at ``self.tokenizer``."""

    tokenizer: Any

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes, without special tokens."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """``text`` cut to at most ``max_tokens`` tokens, and whether it was cut."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            return text, False
        return str(self.tokenizer.decode(ids[:max_tokens])), True
