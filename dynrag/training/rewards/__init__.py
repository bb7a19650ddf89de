"""Rewards: how a selection is scored by the generator's answer from it.

- `scorer`: `RewardScorer` (answers with the generator, then scores the answer with every
  weighted term), `RewardTerms`, `ScoredSample` and `combine`;
- `settings`: the ``reward:`` config section (`RewardConfig`, `RewardWeights`, `JudgeConfig`);
- `terms`: the reward terms, one module each, and their registry `REWARD_TERMS`.

The stage that scores samples is `dynrag.training.stages.reward`; the encoder family's reward of
every cut is `dynrag.training.encoder.prefix_rewards`.
"""

from dynrag.training.rewards.engine import RewardScorer, RewardTerms, ScoredSample, combine
from dynrag.training.rewards.settings import JudgeConfig, RewardConfig, RewardWeights
from dynrag.training.rewards.terms import REWARD_TERMS, RewardTerm, TermInput
from dynrag.training.rewards.terms.brevity import brevity
from dynrag.training.rewards.terms.judge import JUDGE_PROMPT, normalize_judge_score
from dynrag.training.rewards.terms.rouge import rouge_l

__all__ = [
    "JUDGE_PROMPT",
    "REWARD_TERMS",
    "JudgeConfig",
    "RewardConfig",
    "RewardScorer",
    "RewardTerm",
    "RewardTerms",
    "RewardWeights",
    "ScoredSample",
    "TermInput",
    "brevity",
    "combine",
    "normalize_judge_score",
    "rouge_l",
]
