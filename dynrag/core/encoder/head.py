"""The listwise head: reads a query's top candidates jointly, reorders them, and chooses k.

Two small transformer encoders over the M best candidates by the scorer (the list-truncation
design of Choppy and AttnCut, with a reordering step before the cut):

1. **Refine.** Each candidate's features (`dynrag.core.encoder.features`) and its projected
   [CLS] state attend to the others; the output adjusts the scorer's logit, so a bridge passage
   named by the first hop can move up.
2. **Cut.** The candidates in the refined order, with position embeddings, attend to each other;
   position ``i`` gives the logit of "cut after ``i + 1``", a pooled token the logit of ``k = 0``.
   A softmax over the ``M + 1`` logits is the distribution over the cut.

`HeadEnsemble` averages several such heads, trained from different initialisations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CutHead", "Head", "HeadEnsemble", "HeadOutput", "head_inputs", "members"]


@dataclass
class HeadOutput:
    """The head's reading of a batch of candidate lists."""

    scores: torch.Tensor
    """``[B, M]`` refined scores (masked positions: -inf)."""
    order: torch.Tensor
    """``[B, M]`` positions (into the head's input) in refined order, masked ones last."""
    cut_logits: torch.Tensor
    """``[B, M + 1]`` logits of k = 0..M (beyond each list's length: -inf)."""


def _encoder(d: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        d, heads, dim_feedforward=2 * d, dropout=dropout, batch_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class CutHead(nn.Module):
    """Refined scores and a cut distribution for up to ``max_items`` candidates per query."""

    def __init__(
        self,
        num_features: int,
        hidden_size: int,
        *,
        max_items: int = 12,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        hidden_proj: int = 16,
        dropout: float = 0.1,
    ) -> None:
        """Build the head (sizes are recorded in the model's config)."""
        super().__init__()
        self.max_items = max_items
        self.hidden = nn.Sequential(nn.Linear(hidden_size, hidden_proj), nn.Tanh())
        self.embed = nn.Linear(num_features + hidden_proj, d_model)
        self.refine = _encoder(d_model, heads, layers, dropout)
        self.refine_out = nn.Linear(d_model, 1)
        self.position = nn.Embedding(max_items, d_model)
        self.cut_in = nn.Linear(d_model + 2, d_model)
        self.cut = _encoder(d_model, heads, layers, dropout)
        self.cut_out = nn.Linear(d_model, 1)
        self.empty_out = nn.Linear(d_model, 1)
        nn.init.zeros_(self.refine_out.weight)
        nn.init.zeros_(self.refine_out.bias)

    def forward(
        self, features: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor
    ) -> HeadOutput:
        """Read ``[B, M, F]`` features and ``[B, M, H]`` states; ``mask`` is true for real items.

        Item 0 of each list must be real (an empty list has no cut to choose).
        """
        x, scores = self.refined(features, hidden, mask)
        order = torch.argsort(scores.detach(), dim=-1, descending=True, stable=True)
        cut_logits = self.cut_logits(x, scores, mask, order)
        return HeadOutput(scores=scores, order=order, cut_logits=cut_logits)

    def refined(
        self, features: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The refine stage: ``[B, M, D]`` states and ``[B, M]`` scores (masked ones -inf)."""
        pad = ~mask
        x = self.embed(torch.cat([features, self.hidden(hidden)], dim=-1))
        x = self.refine(x, src_key_padding_mask=pad)
        scores = features[..., 0] + self.refine_out(x).squeeze(-1)
        return x, scores.masked_fill(pad, float("-inf"))

    def cut_logits(
        self, x: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, order: torch.Tensor
    ) -> torch.Tensor:
        """The cut stage over the refine stage's ``x`` and ``scores`` taken in ``order``."""
        gathered = torch.gather(x, 1, order.unsqueeze(-1).expand_as(x))
        sorted_scores = torch.gather(scores, 1, order)
        sorted_mask = torch.gather(mask, 1, order)
        best = sorted_scores[:, :1]
        finite = torch.where(sorted_mask, sorted_scores, torch.zeros_like(sorted_scores))
        extra = torch.stack([finite, torch.where(sorted_mask, finite - best, 0.0)], dim=-1)
        positions = torch.arange(x.shape[1], device=x.device)
        y = self.cut_in(torch.cat([gathered, extra], dim=-1)) + self.position(positions)
        y = self.cut(y, src_key_padding_mask=~sorted_mask)
        per_position = self.cut_out(y).squeeze(-1).masked_fill(~sorted_mask, float("-inf"))
        weights = sorted_mask.unsqueeze(-1).to(y.dtype)
        pooled = (y * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return torch.cat([self.empty_out(pooled), per_position], dim=-1)

    def cut_modules(self) -> list[nn.Module]:
        """The cut stage's modules (trained alone when the order must stay as it is)."""
        return [self.position, self.cut_in, self.cut, self.cut_out, self.empty_out]


_FAR = -1e4
"""A log-probability that stands for a member's impossible cut inside the mixture."""


class HeadEnsemble(nn.Module):
    """Independently trained `CutHead`s read as one: a mean order and a mixture of their cuts.

    The refined scores are averaged and give one order; each member's cut stage reads the list
    in that order (with its own scores) and the cut distribution is the mean of the members'
    distributions (its log is returned as the logits). A single head's held-out selection F1
    moves by up to 0.06 from one initialisation to the next; a mixture of five scored above
    their mean on every held-out set measured (research/minilm-cut-recipe.md, session 14). The
    heads are tiny beside the scorer, so the mixture costs little time.
    """

    def __init__(self, members: list[CutHead]) -> None:
        """Wrap at least two heads of the same sizes."""
        super().__init__()
        if len(members) < 2:
            msg = f"an ensemble needs at least 2 heads, got {len(members)}"
            raise ValueError(msg)
        self.members = nn.ModuleList(members)

    def forward(
        self, features: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor
    ) -> HeadOutput:
        """As `CutHead.forward`, for the ensemble."""
        heads = self.heads()
        refined = [h.refined(features, hidden, mask) for h in heads]
        scores = torch.stack([s for _, s in refined]).mean(0)
        order = torch.argsort(scores.detach(), dim=-1, descending=True, stable=True)
        logp = torch.stack(
            [
                torch.log_softmax(h.cut_logits(x, s, mask, order), dim=-1)
                for h, (x, s) in zip(heads, refined, strict=True)
            ]
        )
        # Cuts beyond a list are -inf in every member; a logsumexp over only -inf has a NaN
        # gradient, so they are mixed as a finite stand-in and masked again after.
        beyond = torch.isinf(logp).all(dim=0)
        mixed = torch.logsumexp(logp.clamp(min=_FAR), dim=0) - math.log(len(heads))
        cut_logits = mixed.masked_fill(beyond, float("-inf"))
        return HeadOutput(scores=scores, order=order, cut_logits=cut_logits)

    def heads(self) -> list[CutHead]:
        """The members."""
        return [m for m in self.members if isinstance(m, CutHead)]


Head = CutHead | HeadEnsemble
"""What the encoder family's model holds: one head or an ensemble of heads."""


def members(head: Head) -> list[CutHead]:
    """The heads that are trained one by one: the members of an ensemble, or ``[head]``."""
    return head.heads() if isinstance(head, HeadEnsemble) else [head]


def head_inputs(
    lists: Sequence[tuple[torch.Tensor, torch.Tensor, Sequence[int]]], max_items: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad ``(features, hidden, top positions)`` lists into the head's ``[B, M, ...]`` input."""
    b = len(lists)
    f = lists[0][0].shape[1]
    h = lists[0][1].shape[1]
    feats = torch.zeros(b, max_items, f)
    hidden = torch.zeros(b, max_items, h)
    mask = torch.zeros(b, max_items, dtype=torch.bool)
    for i, (fe, hi, top) in enumerate(lists):
        idx = torch.tensor(list(top)[:max_items], dtype=torch.long)
        feats[i, : len(idx)] = fe[idx]
        hidden[i, : len(idx)] = hi[idx]
        mask[i, : len(idx)] = True
    return feats, hidden, mask
