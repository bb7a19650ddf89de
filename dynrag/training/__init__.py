"""``dynrag-train``: behaviour cloning and RL from generator feedback, built on TRL + PEFT.

Needs the ``train`` extra (``pip install 'dynrag[train]'``); nothing here is imported by
``dynrag`` itself. The pieces:

- `TrainConfig` and its per-stage sections (`dynrag.training.config`), read from YAML;
- `RunDir`: the run folder and its manifest (resumable, seeded);
- the stages (`dynrag.training.stages`, one module each, and their registry): ``bc``,
  ``sample``, ``reward``, ``pairs``, ``dpo``, ``grpo``, ``feedback`` and `run_pipeline`;
- `RewardScorer` (`dynrag.training.rewards`) and the reward terms, one module each in
  `dynrag.training.reward_terms` with its registry `REWARD_TERMS`;
- `FeedbackRecord`, the schema of in-house feedback logs (`dynrag.training.feedback`).
"""

from dynrag.training.config import TrainConfig, load_config
from dynrag.training.feedback import FeedbackRecord, feedback_pairs, read_feedback
from dynrag.training.rewards import RewardScorer, RewardTerms, normalize_judge_score
from dynrag.training.rundir import RunDir
from dynrag.training.stages import STAGE_FUNCTIONS, STAGES, StageSpec, register_stage, run_pipeline

__all__ = [
    "STAGES",
    "STAGE_FUNCTIONS",
    "FeedbackRecord",
    "RewardScorer",
    "RewardTerms",
    "RunDir",
    "StageSpec",
    "TrainConfig",
    "feedback_pairs",
    "load_config",
    "normalize_judge_score",
    "read_feedback",
    "register_stage",
    "run_pipeline",
]
