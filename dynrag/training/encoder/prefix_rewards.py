"""Generator feedback for every cut: the reward of each prefix k = 0..K of the model's order.

For each training question the generator answers from the first k passages of the model's order
(k = 0: from no passage), and the project's reward terms (`dynrag.training.rewards`: gold-answer
likelihood, F1, EM, brevity as the per-passage cost...) score each prefix. Rewards are appended
to a JSONL cache, one line per (question, prefix), so an interrupted run resumes where it
stopped and a rerun costs nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from dynrag.core.encoder.model import Analysis
from dynrag.data.examples import QAExample
from dynrag.data.jsonl import appending, read_jsonl
from dynrag.training.rewards.engine import RewardScorer, combine
from dynrag.training.rewards.settings import RewardConfig

__all__ = ["prefix_rewards"]

logger = logging.getLogger(__name__)


def _read_cache(path: Path) -> dict[tuple[str, tuple[int, ...]], dict[str, Any]]:
    done: dict[tuple[str, tuple[int, ...]], dict[str, Any]] = {}
    if not path.is_file():
        return done
    for row in read_jsonl(path):  # a line cut by a kill is skipped, so recomputed
        done[(row["id"], tuple(row["selection"]))] = row
    return done


def prefix_rewards(
    examples: Sequence[QAExample],
    analyses: Sequence[Analysis],
    config: RewardConfig,
    max_k: int,
    cache: Path,
    *,
    device: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[Q, M + 1]`` rewards of each cut, and which cuts have one (k <= ``max_k``).

    ``M`` is the longest head list among ``analyses``; cuts beyond a question's list or beyond
    ``max_k`` are not known.
    """
    scorer = RewardScorer(config, device=device)
    needs_answer = scorer.needs_answer
    done = _read_cache(cache)
    width = max((len(a.top) for a in analyses), default=0) + 1
    rewards = torch.zeros(len(examples), width)
    known = torch.zeros(len(examples), width, dtype=torch.bool)
    computed = 0
    with appending(cache) as out:
        for q, (ex, a) in enumerate(
            tqdm(list(zip(examples, analyses, strict=True)), desc="prefix rewards", unit="q")
        ):
            cuts = range(min(max_k, len(a.top)) + 1)
            selections = [tuple(a.order[:k]) for k in cuts]
            todo = [s for s in selections if (ex.id, s) not in done]
            answers = [""] * len(todo)
            if todo and needs_answer:
                answers = scorer.answers(ex.id, ex.question, ex.passages, [list(s) for s in todo])
            for sel, answer in zip(todo, answers, strict=True):
                terms = scorer.terms(ex.question, ex.passages, sel, answer, ex.answers, ex.gold)
                row = {
                    "id": ex.id,
                    "k": len(sel),
                    "selection": list(sel),
                    "answer": answer,
                    "terms": terms.model_dump(exclude_none=True),
                    "reward": combine(terms, config.weights),
                }
                out.write(json.dumps(row) + "\n")
                done[(ex.id, sel)] = row
                computed += 1
            out.flush()
            for k, sel in zip(cuts, selections, strict=True):
                rewards[q, k] = float(done[(ex.id, sel)]["reward"])
                known[q, k] = True
    logger.info(
        "prefix rewards: %d computed, %d from the cache", computed, int(known.sum()) - computed
    )
    return rewards, known
