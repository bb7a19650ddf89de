"""LlamaIndex integration of dynrag: ``DynamicRAGRerank``, a node postprocessor."""

from llama_index_dynrag.base import ADDED_METADATA_KEYS, DynamicRAGRerank

__all__ = ["ADDED_METADATA_KEYS", "DynamicRAGRerank"]
