"""The model an encoder stage starts from, and its checkpoint written over the same scorer.

``encoder-rl`` and ``encoder-feedback`` retrain the head of the run's newest encoder model and
keep its scorer: they load it with `load_start`, and `save_over_start` writes the new head
beside the start model's scorer adapter, base model and default ``max_k``.
"""

from __future__ import annotations

from pathlib import Path

from dynrag.core.encoder.model import EncoderReranker

__all__ = ["load_start", "save_over_start"]


def load_start(stage: str, start: str | Path, device: str | None) -> EncoderReranker:
    """The encoder model at ``start``.

    Raises:
        ValueError: ``start`` is a model of another family (``stage`` names the stage).
    """
    from dynrag.core.families import load_reranker

    reranker = load_reranker(str(start), device=device)
    if not isinstance(reranker, EncoderReranker):
        msg = f"{stage} trains an encoder model; {start} is a {reranker.kind!r} model"
        raise ValueError(msg)
    return reranker


def save_over_start(reranker: EncoderReranker, folder: Path, start: str | Path) -> Path:
    """Write ``reranker`` to ``folder`` with the scorer and settings of the model at ``start``."""
    from dynrag.core.loading import resolve_model

    source = resolve_model(str(start))
    return reranker.save(
        folder,
        scorer_adapter=source.path / "scorer",
        base_model=source.config.base_model,
        max_k=source.config.max_k,
    )
