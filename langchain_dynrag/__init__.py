"""LangChain integration of dynrag: ``DynamicRAGRerank``, a document compressor."""

from langchain_dynrag.rerank import DynamicRAGRerank

__all__ = ["DynamicRAGRerank"]
