"""The dynamic reranker engine: one interface, the selection policy, and two model families.

`Reranker` (alias `DynamicReranker`) is the interface; `SelectionPolicy` bounds every
selection; the families are `dynrag.core.encoder` (the CPU default) and
`dynrag.core.generative` (the paper's LLM reranker). This package imports nothing above it (no
framework, no dynrag.serve, eval or training): adapters and commands build on it.
"""

from dynrag.core.families import available_families, register_family
from dynrag.core.generative.parsing import parse_selection
from dynrag.core.generative.prompts import (
    DYNAMICRAG_V1,
    GENERATOR_V1,
    GeneratorFormat,
    PromptFormat,
    available_prompt_formats,
    get_prompt_format,
    register_prompt_format,
)
from dynrag.core.generative.reranker import GenerativeReranker
from dynrag.core.interface import DynamicReranker, Reranker
from dynrag.core.policy import SelectionPolicy
from dynrag.core.types import (
    ParseResult,
    ParseStatus,
    Passage,
    PassageLike,
    Selection,
    SelectionStatus,
)

__all__ = [
    "DYNAMICRAG_V1",
    "GENERATOR_V1",
    "DynamicReranker",
    "GenerativeReranker",
    "GeneratorFormat",
    "ParseResult",
    "ParseStatus",
    "Passage",
    "PassageLike",
    "PromptFormat",
    "Reranker",
    "Selection",
    "SelectionPolicy",
    "SelectionStatus",
    "available_families",
    "available_prompt_formats",
    "get_prompt_format",
    "parse_selection",
    "register_family",
    "register_prompt_format",
]
