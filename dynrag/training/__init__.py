"""``dynrag-train``: behaviour cloning and RL from generator feedback, for both reranker families.

Needs the ``train`` extra (``pip install 'dynrag[train]'``); nothing here is imported by
``dynrag`` itself. The layout, lowest layer first (a module imports only from layers below it):

- `config` (`SharedConfig`, `DataConfig`: the fields every stage shares) and `compat` (what
  keeps older run directories and configs valid);
- `rundir` (`RunDir`: the run folder and its manifest, resumable and seeded), `questions` (the
  training questions), `feedback` (`FeedbackRecord`, the schema of in-house feedback logs);
- helpers of one family or one concern: `causal_lm` (the generative family's model, prompts,
  trainer settings and plot), `encoder` (the encoder family's scorer and head training),
  `rewards` (`RewardScorer`, the ``reward:`` settings and the reward terms, one module each in
  `rewards.terms` with their registry `REWARD_TERMS`);
- `stages`: one module per stage, each with its settings class (its YAML section), run through
  one skeleton (`stages.base`), and their registry (`stages.registry`): ``bc``, ``sample``,
  ``reward``, ``pairs``, ``dpo``, ``grpo``, ``feedback``, ``encoder-bc``, ``encoder-rl``,
  ``encoder-feedback``;
- `pipeline`: `TrainConfig` (the YAML file, its sections validated against the registry),
  `load_config`, `run_pipeline` and `run_named_stage`; then `cli`.
"""

from dynrag.training.config import DataConfig, SharedConfig
from dynrag.training.feedback import FeedbackRecord, feedback_pairs, read_feedback
from dynrag.training.pipeline import TrainConfig, load_config, run_named_stage, run_pipeline
from dynrag.training.rewards import RewardScorer, RewardTerms, normalize_judge_score
from dynrag.training.rundir import RunDir
from dynrag.training.stages import STAGES, StageSpec, get_stage, register_stage, run_stage

__all__ = [
    "STAGES",
    "DataConfig",
    "FeedbackRecord",
    "RewardScorer",
    "RewardTerms",
    "RunDir",
    "SharedConfig",
    "StageSpec",
    "TrainConfig",
    "feedback_pairs",
    "get_stage",
    "load_config",
    "normalize_judge_score",
    "read_feedback",
    "register_stage",
    "run_named_stage",
    "run_pipeline",
    "run_stage",
]
