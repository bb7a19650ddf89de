"""The encoder family: a MiniLM cross-encoder scorer and a listwise head that learns where to cut.

Loaded through `dynrag.core.families` (``kind: encoder``); see `EncoderReranker`.
"""
