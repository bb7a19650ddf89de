"""``semantic``: cosine of sentence-transformers embeddings of the answer and the gold answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dynrag.data.examples import normalize_answer
from dynrag.training.rewards.terms.base import RewardTerm, TermInput

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer

__all__ = ["Semantic"]


class Semantic(RewardTerm):
    """Cosine with the closest gold alias, clipped to [0, 1] (an empty answer scores 0).

    The embedder is ``reward.semantic_model``, by default the bundled all-MiniLM-L6-v2.
    """

    name = "semantic"
    description = "embedding cosine with a gold answer (reward.semantic_model)"
    _embedder: Any = None

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """Cosine of answer and gold embeddings, max over aliases, clipped to [0, 1]."""
        if not normalize_answer(sample.answer):
            return 0.0
        if self._embedder is None:
            from sentence_transformers import SentenceTransformer

            from dynrag.core.constants import base_minilm_path

            path = str(base_minilm_path(self.config.semantic_model))
            self._embedder = SentenceTransformer(path, device="cpu")
        vectors = self._embedder.encode(
            [sample.answer, *sample.golds], normalize_embeddings=True, show_progress_bar=False
        )
        return max(0.0, min(1.0, max(float(v @ vectors[0]) for v in vectors[1:])))
