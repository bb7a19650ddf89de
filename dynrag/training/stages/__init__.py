"""The stages of `dynrag-train`, one module each, and their registry (`registry`).

``bc`` -> ``sample`` -> ``reward`` -> ``pairs`` -> ``dpo`` is the published recipe of the
generative family (behaviour cloning, then DPO on the best and worst of n samples scored by the
generator). ``grpo`` is the online alternative and ``feedback`` trains on in-house logs.
``encoder-bc`` -> ``encoder-rl`` (and ``encoder-feedback``) train the encoder family. Every stage
runs through one skeleton (`base.run_stage`): it is seeded, records its inputs in the manifest,
is skipped when already complete, and resumes when interrupted. The pipeline
(`dynrag.training.pipeline`) runs them by name.

Adding a stage
--------------
1. Write one module here, e.g. ``encoder_bc.py``, that defines its settings class and ``STAGE``::

       class EncoderBCConfig(BaseModel):  # its YAML section (extra="forbid" recommended)
           model_config = ConfigDict(extra="forbid")
           epochs: int = 1

       def _run(ctx: StageContext) -> dict[str, Any]:
           import torch  # heavy imports here, so that `dynrag-train --help` stays fast

           settings: EncoderBCConfig = ctx.settings  # the validated ``encoder-bc:`` section
           start = ctx.start  # the model it starts from (``start=`` below)
           rows = ctx.upstream("bc/experts.json")  # a file it declared in ``reads``
           ...  # train, writing under ctx.dir (its folder); models go to ctx.checkpoint
           return {"checkpoint": str(ctx.checkpoint)}  # recorded in the manifest

       STAGE = StageSpec(
           name="encoder-bc",
           help="one line for dynrag-train --help",
           run=_run,
           settings=EncoderBCConfig,  # config_key defaults to the name: ``encoder-bc:``
           reads=("bc/experts.json",),
           start=latest_model_before("encoder-bc"),  # or lambda rd: rd.config.model
           trains=True,  # writes <name>/checkpoint that later stages start from
       )

   A stage module imports `base` (and `dynrag.training.config`, `rundir`, helpers), never the
   registry or the pipeline.
2. Add its module name to ``BUILTIN_MODULES`` in `registry` (pipeline order). That is all: the
   config accepts ``encoder-bc`` in ``stages:`` and validates its section, the run directory
   hashes that section and counts its checkpoint, and the CLI gets an ``encoder-bc`` subcommand.

Code outside this package may instead call ``register_stage(spec)`` (the tests do). TRL stages
build their trainer config with `trl_support`; nothing else here assumes TRL or a causal LM.
"""

from dynrag.training.stages.base import StageContext, StageSpec, latest_model_before, run_stage
from dynrag.training.stages.registry import (
    BUILTIN_MODULES,
    STAGES,
    config_sections,
    get_stage,
    register_stage,
    training_stages,
    unregister_stage,
)

__all__ = [
    "BUILTIN_MODULES",
    "STAGES",
    "StageContext",
    "StageSpec",
    "config_sections",
    "get_stage",
    "latest_model_before",
    "register_stage",
    "run_stage",
    "training_stages",
    "unregister_stage",
]
