"""What the generative family's (causal LM) training stages share, and the encoder family does not.

- `trainer_settings`: `TrainerSettings` and `LoraSettings`, the base of every TRL stage's section;
- `models`: loading the model to train (LoRA or full weights), saving checkpoints the
  `GenerativeReranker` loads, merging adapters, choosing the generation backend;
- `data`: `PromptBuilder` (prompts and completions rendered as at inference) and `fit_length`;
- `plots`: the run's training plot (``plots/training.png``).

The training questions both families read are `dynrag.training.questions`.
"""
