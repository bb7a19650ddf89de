"""Loading the generative family: a resolved model folder (or a served name) to a reranker.

`dynrag.core.families` calls `load_generative` for every folder whose ``dynrag_config.json``
records ``kind: generative`` or no kind at all (the released DynamicRAG checkpoints, plain causal
LMs, this project's LoRA models), and `load_served` for ``backend="openai"``.
"""

from __future__ import annotations

import inspect
from typing import Any

from dynrag.core.generative.backends import get_backend
from dynrag.core.generative.reranker import GenerativeReranker
from dynrag.core.loading import RELEASED_CHECKPOINTS, ModelConfig, ResolvedModel
from dynrag.core.policy import POLICY_FIELDS, SelectionPolicy

__all__ = ["load_generative", "load_served", "split_options"]

_RERANKER_OPTIONS = frozenset(inspect.signature(GenerativeReranker.__init__).parameters) - {
    "self",
    "backend",
}


def split_options(
    config: ModelConfig, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` split into the reranker's (with its policy built) and the backend's.

    Policy fields (``min_k``, ``max_k``...) build the policy, on top of what the model records
    (its trained ``max_k``); the reranker's own arguments default to the model's config; every
    other keyword goes to the backend, which refuses one it does not know.

    Raises:
        ValueError: both ``policy=`` and policy fields.
    """
    kwargs = dict(kwargs)
    policy_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in POLICY_FIELDS}
    own = {k: kwargs.pop(k) for k in list(kwargs) if k in _RERANKER_OPTIONS}
    own["policy"] = SelectionPolicy.for_model(config.max_k, own.get("policy"), **policy_kw)
    own.setdefault("window_size", config.window_size)
    if config.max_passage_tokens:
        own.setdefault("max_passage_tokens", config.max_passage_tokens)
    own.setdefault("presort", config.presort)
    if own.get("prompt_format") is None:
        own["prompt_format"] = config.prompt_format
    return own, kwargs


def load_generative(
    resolved: ResolvedModel, *, backend: str = "transformers", **kwargs: Any
) -> GenerativeReranker:
    """A generative reranker over ``resolved``, with the named backend.

    Args:
        resolved: The model folder and its config.
        backend: A registered backend (`dynrag.core.generative.backends`): ``transformers``
            (CPU/GPU) or ``vllm`` (GPU).
        **kwargs: ``device``, ``dtype``, ``batch_size`` and the backend's own options;
            `GenerativeReranker` arguments (``policy``, ``prompt_format``, ``window_size``,
            ``max_passage_tokens``, ``constrained``, ``presort``...); or policy fields.

    Raises:
        ValueError: an unknown backend.
        TypeError: an option neither the reranker nor the backend knows.
    """
    own, backend_kw = split_options(resolved.config, kwargs)
    engine = get_backend(backend).load(resolved, **backend_kw)
    reranker = GenerativeReranker(engine, **own)
    reranker.name_or_path = resolved.name or str(resolved.path)
    return reranker


def load_served(name: str, *, backend: str = "openai", **kwargs: Any) -> GenerativeReranker:
    """A generative reranker whose model ``name`` is served by an OpenAI-compatible server.

    Args:
        name: The served model's name (a released checkpoint's hub id gets its window size).
        backend: ``openai``.
        **kwargs: ``base_url`` and the other `OpenAIBackend` options, `GenerativeReranker`
            arguments or policy fields.
    """
    config = RELEASED_CHECKPOINTS.get(name) or ModelConfig()
    own, backend_kw = split_options(config, kwargs)
    engine = get_backend(backend).load(name, **backend_kw)
    reranker = GenerativeReranker(engine, **own)
    reranker.name_or_path = name
    return reranker
