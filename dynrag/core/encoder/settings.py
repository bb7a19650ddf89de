"""The encoder family's settings (``encoder`` in ``dynrag_config.json``); imports no torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["FIELDS_NEW_AT_DEFAULT", "EncoderSettings"]

FIELDS_NEW_AT_DEFAULT: frozenset[str] = frozenset({"similarities", "similarity_layer", "members"})
"""`EncoderSettings` fields added after models were shipped: written only when set.

The one list: ``dynrag-train``'s run-directory hash leaves the same fields out while they hold
their defaults, so that run directories made before a field existed still match their hash.
"""


MAX_HEAD_WEIGHTS = 50_000_000
"""The most weights the heads of one model may have (200 MB in float32; the shipped model's five
heads have about 0.7 million)."""


class EncoderSettings(BaseModel):
    """The encoder family's part of ``dynrag_config.json`` (under ``encoder``)."""

    model_config = ConfigDict(extra="forbid")

    # Every size has an upper bound, checked before anything is allocated: a model folder is
    # input too (members: 100000 allocated 6 GB, max_items: 1e8 tried 25.6 GB).
    max_length: int = Field(
        default=192, ge=16, le=512, description="Tokens the cross-encoder reads (MiniLM: 512)."
    )
    embed_max_length: int = Field(
        default=64, ge=8, le=512, description="Tokens the bi-encoder reads."
    )
    similarities: Literal["bi-encoder", "cross"] = Field(
        default="bi-encoder",
        description=(
            "Where the query-passage and passage-passage similarities come from: the base "
            "MiniLM as a bi-encoder (a second forward pass over each text's first "
            "``embed_max_length`` tokens), or the cross-encoder's own states after "
            "``similarity_layer``, mean-pooled over each pair's query and passage tokens (no "
            "second pass, no bi-encoder loaded)."
        ),
    )
    similarity_layer: int = Field(
        default=-1,
        ge=-64,
        le=64,
        description=(
            "With ``similarities: cross``, the layer whose states are pooled: an index into "
            "the cross-encoder's hidden states (0 the embeddings, -1 the last layer)."
        ),
    )
    max_items: int = Field(default=12, ge=1, le=1024, description="Candidates the head reads (M).")
    max_query_tokens: int = Field(
        default=64,
        ge=4,
        le=512,
        description="A longer query is cut (logged), as the server caps it.",
    )
    max_title_tokens: int = Field(default=32, ge=1, le=512, description="A longer title is cut.")
    d_model: int = Field(default=64, ge=1, le=4096, description="The head's width.")
    heads: int = Field(default=4, ge=1, le=64, description="The head's attention heads.")
    layers: int = Field(default=2, ge=1, le=48, description="The head's transformer layers.")
    hidden_proj: int = Field(
        default=16, ge=1, le=4096, description="The scorer's states, projected to this width."
    )
    members: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Heads in the model: more than one is an ensemble of heads trained from different "
            "initialisations (seeds ``seed`` .. ``seed + members - 1``), whose scores are "
            "averaged and whose cut distributions are mixed."
        ),
    )
    temperature: float = Field(
        default=1.0,
        gt=0,
        description="Calibration of the cut distribution (fitted after training).",
    )

    @model_validator(mode="after")
    def _head_size(self) -> EncoderSettings:
        """The heads' size as a whole, bounded before any is built (each field alone may pass)."""
        weights = self.members * 16 * self.layers * self.d_model**2  # two encoders of 8 d^2
        if weights > MAX_HEAD_WEIGHTS:
            msg = (
                f"members x layers x d_model make heads of about {weights:,} weights, over "
                f"{MAX_HEAD_WEIGHTS:,}: this is not a dynrag model folder"
            )
            raise ValueError(msg)
        return self
