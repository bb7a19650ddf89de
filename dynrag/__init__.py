"""dynrag: dynamic reranking for retrieval-augmented generation.

An LLM reads a query and the retrieved passages and writes the ids of the passages the generator
needs, best first, stopping when they suffice: it chooses the order and the number k per query.
"""

from importlib.metadata import PackageNotFoundError, version

from dynrag.core import (
    DynamicReranker,
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
    "Passage",
    "Reranker",
    "Selection",
    "SelectionPolicy",
    "SelectionStatus",
    "__version__",
    "parse_selection",
]
