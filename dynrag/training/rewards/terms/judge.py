"""``judge``: an LLM's 0-100 rating of the answer against the gold answer, divided by 100.

The judge is ``reward.judge``: a model loaded in process, or one behind an OpenAI-compatible
server (``base_url``). A rating that cannot be read scores 0 and is logged.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any

from dynrag.training.rewards.terms.base import RewardTerm, TermInput

if TYPE_CHECKING:
    from dynrag.training.rewards.engine import RewardScorer
    from dynrag.training.rewards.settings import RewardConfig

__all__ = ["JUDGE_PROMPT", "Judge", "normalize_judge_score"]

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

JUDGE_PROMPT = (
    "Rate how well the answer matches the reference answer to the question, from 0 (wrong) to "
    "100 (fully correct). Reply with the number only.\n\nQuestion: {question}\n"
    "Reference answer: {gold}\nAnswer: {answer}\n\nScore:"
)


def normalize_judge_score(value: str | float | int | None, scale: float = 100.0) -> float | None:
    """A judge's rating as a number in [0, 1]: ``"85"`` -> 0.85, ``"Score: 70/100"`` -> 0.7.

    Returns None when no number can be read (the caller logs it and scores 0).
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        match = _NUMBER.search(str(value))
        if match is None:
            return None
        number = float(match.group())
    if math.isnan(number):
        return None
    return min(max(number / scale, 0.0), 1.0)


class Judge(RewardTerm):
    """The judge's rating / 100."""

    name = "judge"
    description = "LLM-judge score / 100 (needs a reward.judge section)"
    _judge: Any = None

    @classmethod
    def config_error(cls, config: RewardConfig) -> str | None:
        """A judge weight needs the judge named."""
        if config.judge is None:
            return "reward.weights.judge > 0 needs a reward.judge section naming the judge model"
        return None

    def _model(self) -> Any:
        if self._judge is None:
            from dynrag.core.generative.answer_lm import AnswerGenerator

            judge_cfg = self.config.judge
            assert judge_cfg is not None  # checked by config_error
            if judge_cfg.base_url:
                from dynrag.core.generative.backends.openai import OpenAIBackend

                backend = OpenAIBackend(
                    model=judge_cfg.model,
                    base_url=judge_cfg.base_url,
                    api_key=judge_cfg.api_key or "EMPTY",
                )
                self._judge = AnswerGenerator(backend, max_new_tokens=judge_cfg.max_new_tokens)
            else:
                self._judge = AnswerGenerator.from_pretrained(
                    judge_cfg.model, device=self.device, max_new_tokens=judge_cfg.max_new_tokens
                )
        return self._judge

    def score(self, sample: TermInput, scorer: RewardScorer) -> float:
        """The judge's 0-100 rating / 100 (0 when unreadable, logged)."""
        prompt = JUDGE_PROMPT.format(
            question=sample.question, gold=" / ".join(sample.golds), answer=sample.answer
        )
        raw = self._model().chat([{"role": "user", "content": prompt}])
        score = normalize_judge_score(raw)
        if score is None:
            logger.warning("judge wrote no score (%r); judge term = 0", raw[:80])
            return 0.0
        return score
