"""``dynrag-train``: behaviour cloning and RL from generator feedback, stage by stage.

One subcommand per registered stage (`dynrag.training.stages.registry.STAGES`, with its help
line), plus ``run``. Every subcommand takes the pipeline config (YAML); ``run`` executes ``stages``
from it in order, skipping completed ones. Works the same under ``accelerate launch``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

_RUN_HELP = "the whole pipeline (config.stages), skipping completed stages"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one subcommand per registered stage, plus ``run``)."""
    from dynrag.training.stages.registry import STAGES

    helps = {name: spec.help for name, spec in STAGES.items()}
    helps["run"] = _RUN_HELP
    parser = argparse.ArgumentParser(
        prog="dynrag-train",
        description="Train a dynamic reranker: behaviour cloning, then RL from generator feedback.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in helps.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", required=True, help="pipeline config (YAML)")
        p.add_argument("--run-dir", help="override the config's run_dir")
        p.add_argument("--model", help="override the config's starting model")
        p.add_argument("--device", help="override the config's device (cpu, cuda...)")
        p.add_argument(
            "--force", action="store_true", help="run even if the stage already completed"
        )
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dynrag-train``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("dynrag.training")
    try:
        import datasets  # noqa: F401  # the train extra, checked before any work starts
        import trl  # noqa: F401

        from dynrag.training.pipeline import load_config, run_named_stage, run_pipeline
        from dynrag.training.rundir import RunDir, StageConflictError
    except ImportError as err:
        log.error("%s\ndynrag-train needs the train extra: pip install 'dynrag[train]'", err)
        return 2
    try:
        config = load_config(
            args.config, run_dir=args.run_dir, model=args.model, device=args.device
        )
        if args.command == "run":
            final = run_pipeline(config, force=args.force)
        else:
            rd = RunDir(config)
            final = run_named_stage(args.command, rd, force=args.force)
    except (ValueError, FileNotFoundError, StageConflictError) as err:
        log.error("%s", err)
        return 2
    log.info("done: %s", final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
