"""dynrag: dynamic reranking for retrieval-augmented generation.

A reranker reads a query and the retrieved passages and returns the passages the generator needs,
best first, stopping when they suffice: it chooses the order and the number k per query. The model
is, by default, a cross-encoder with a listwise head that learns where to cut
(``dynrag-minilm-cut``), or, as in the DynamicRAG paper, an LLM that writes the chosen ids.
"""

from importlib.metadata import PackageNotFoundError, version

from dynrag.core import (
    DynamicReranker,
    GenerativeReranker,
    Passage,
    Reranker,
    Selection,
    SelectionPolicy,
    SelectionStatus,
    parse_selection,
)

try:
    __version__ = version("dynrag")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "DynamicReranker",
    "GenerativeReranker",
    "Passage",
    "Reranker",
    "Selection",
    "SelectionPolicy",
    "SelectionStatus",
    "__version__",
    "parse_selection",
]
