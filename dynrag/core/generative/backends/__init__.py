"""Backends: how tokens are produced, found by name in one registry.

``transformers`` (CPU/GPU, in process), ``vllm`` (GPU, in process) and ``openai`` (any
OpenAI-compatible server). A backend is a class with ``name``, ``count_tokens``, ``truncate``
and ``generate`` (`Backend`) and a classmethod ``load(model, *, device, dtype, batch_size,
**options)``, where ``model`` is a `dynrag.core.loading.ResolvedModel` (or, for a server, the
served model's name) and ``options`` are the backend's own keyword arguments; an unknown option
is a ``TypeError`` naming it. Adding a backend is one module plus one line in ``_BACKENDS``
(or a `register_backend` call). Classes are registered as ``"module:Class"`` strings so that
nothing heavy (torch, vllm, openai) is imported until a backend is used.
"""

from __future__ import annotations

from typing import Any

from dynrag.core.generative.backends.base import (
    Backend,
    GenerationRequest,
    GrammarSpec,
    SamplingParams,
    ScoringBackend,
)
from dynrag.core.registry import LazyRegistry

__all__ = [
    "Backend",
    "GenerationRequest",
    "GrammarSpec",
    "SamplingParams",
    "ScoringBackend",
    "available_backends",
    "get_backend",
    "register_backend",
]

_BACKENDS: LazyRegistry[Any] = LazyRegistry(
    "backend",
    {
        "transformers": "dynrag.core.generative.backends.transformers:TransformersBackend",
        "vllm": "dynrag.core.generative.backends.vllm:VLLMBackend",
        "openai": "dynrag.core.generative.backends.openai:OpenAIBackend",
    },
)


def register_backend(name: str, backend: str | type, *, replace: bool = False) -> None:
    """Register a backend class (or ``"module:Class"``) under ``name``.

    Raises:
        ValueError: ``name`` is taken and ``replace`` is false.
    """
    _BACKENDS.register(name, backend, replace=replace)


def available_backends() -> list[str]:
    """The registered backend names."""
    return _BACKENDS.names()


def get_backend(name: str) -> Any:
    """The backend class registered as ``name``.

    Raises:
        ValueError: no such backend.
    """
    return _BACKENDS.get(name)
