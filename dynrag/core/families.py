"""Model families: the registry behind `Reranker.from_pretrained`, and the one loading path.

A family is a function ``load(resolved, **kwargs) -> Reranker`` that builds a reranker from a
model folder found by `dynrag.core.loading.resolve_model`. The folder's ``dynrag_config.json``
names its family in ``kind``; a folder without one (every released DynamicRAG checkpoint, a plain
causal LM) is ``generative``.

Adding a family is one module with its loader plus one line: an entry of ``_FAMILIES`` here for
a family of dynrag.core, an entry point of the ``dynrag.families`` group in pyproject.toml for
one outside it (the HTTP client of ``dynrag serve`` is the ``url`` family this way, so core never
names it; another package adds its own family the same way), or a `register_family` call.
Families are ``"module:function"`` strings, so importing dynrag loads no model code (torch,
transformers) until a model is loaded.

A URL (``http://``, ``https://``) is loaded by the ``url`` family, called with the URL itself
instead of a resolved folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dynrag.core.registry import LazyRegistry, import_target

if TYPE_CHECKING:
    from dynrag.core.interface import Reranker
    from dynrag.core.loading import ResolvedModel

__all__ = ["FamilyLoader", "available_families", "get_family", "load_reranker", "register_family"]

FamilyLoader = Callable[..., "Reranker"]
"""``loader(resolved: ResolvedModel, **kwargs) -> Reranker``."""

_FAMILIES: LazyRegistry[FamilyLoader] = LazyRegistry(
    "model family",
    {
        "generative": "dynrag.core.generative.loader:load_generative",
        "encoder": "dynrag.core.encoder.model:load_encoder",
    },
    group="dynrag.families",
)

_SERVED = "dynrag.core.generative.loader:load_served"
"""A generative model served by name from an OpenAI-compatible server (nothing local)."""

URL_FAMILY = "url"
"""The family that loads a URL: ``loader(url, **kwargs)`` (an entry point: the HTTP client)."""


def register_family(kind: str, loader: str | FamilyLoader, *, replace: bool = False) -> None:
    """Register a model family under ``kind`` (the value of ``dynrag_config.json``'s ``kind``).

    Args:
        kind: The family's name.
        loader: ``loader(resolved, **kwargs) -> Reranker``, or ``"module:function"`` naming it.
        replace: Allow replacing a registered family.

    Raises:
        ValueError: ``kind`` is taken (and ``replace`` is false) or blank.
    """
    _FAMILIES.register(kind, loader, replace=replace)


def available_families() -> list[str]:
    """The registered family names."""
    return _FAMILIES.names()


def get_family(kind: str) -> FamilyLoader:
    """The loader of family ``kind``.

    Raises:
        ValueError: no such family.
    """
    return _FAMILIES.get(kind)


def load_reranker(name_or_path: str | os.PathLike[str], **kwargs: Any) -> Reranker:
    """Load a reranker of any family.

    Args:
        name_or_path: A model folder, a bundled name (`dynrag.core.loading.BUNDLED_MODELS`), a
            Hugging Face id, or the URL of a ``dynrag serve`` server.
        **kwargs: The family's options (for example ``device``, ``backend`` and policy fields
            such as ``max_k``); a URL takes the HTTP client's (``policy``, ``timeout``...).
            ``backend="openai"`` serves a generative model by name from an OpenAI-compatible
            server, so nothing is resolved locally.

    Raises:
        ValueError: an unknown family or option, or a name that is no model.
        OSError: a hub id that cannot be fetched.
    """
    from dynrag.core.loading import resolve_model

    name = os.fspath(name_or_path)
    if name.startswith(("http://", "https://")):
        if URL_FAMILY not in _FAMILIES:
            msg = f"no {URL_FAMILY!r} family to load {name!r}: install dynrag (its entry points)"
            raise ValueError(msg)
        client: Reranker = get_family(URL_FAMILY)(name, **kwargs)
        return client
    if kwargs.get("backend") == "openai":
        served: Reranker = import_target(_SERVED)(name, **kwargs)
        return served
    resolved: ResolvedModel = resolve_model(name_or_path)
    reranker = get_family(resolved.config.kind)(resolved, **kwargs)
    reranker.name_or_path = name
    return reranker
