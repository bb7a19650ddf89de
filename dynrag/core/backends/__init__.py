"""Backends: how tokens are produced (transformers in-process; more behind extras)."""

from dynrag.core.backends.base import Backend, GenerationRequest, GrammarSpec, SamplingParams

__all__ = ["Backend", "GenerationRequest", "GrammarSpec", "SamplingParams"]
