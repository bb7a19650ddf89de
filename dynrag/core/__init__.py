"""The dynamic reranker engine: types, prompt formats, parsing, policy, backends.

This package imports no framework (LlamaIndex, LangChain, TRL): adapters build on it.
"""

from dynrag.core.families import available_families, register_family
from dynrag.core.interface import Reranker
from dynrag.core.parsing import ParseResult, ParseStatus, parse_selection
from dynrag.core.policy import SelectionPolicy
from dynrag.core.prompts import (
    DYNAMICRAG_V1,
    GENERATOR_V1,
    GeneratorFormat,
    PromptFormat,
    available_prompt_formats,
    get_prompt_format,
    register_prompt_format,
)
from dynrag.core.reranker import DynamicReranker
from dynrag.core.types import Passage, PassageLike, Selection, SelectionStatus

__all__ = [
    "DYNAMICRAG_V1",
    "GENERATOR_V1",
    "DynamicReranker",
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
