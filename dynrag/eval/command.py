"""``dynrag eval``: the command that compares selectors on a QA file and writes the report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dynrag.core.constants import DEFAULT_MODEL
from dynrag.core.loading import load_error

__all__ = ["cmd_eval", "model_labels"]

logger = logging.getLogger("dynrag.cli")


def model_labels(models: list[str]) -> list[str]:
    """Short, distinct report labels for ``--reranker`` values.

    A folder is named by its last path parts: ``bc/checkpoint`` for a run's checkpoint, with as
    many more parts as it takes to tell it from the others (two runs' ``bc/checkpoint``). Names
    that are not folders (bundled names, hub ids) stay as given.

    Raises:
        ValueError: the same model given twice.
    """
    parts = [Path(m).resolve().parts if Path(m).is_dir() else () for m in models]
    depth = [2 if p and p[-1] == "checkpoint" else 1 for p in parts]
    while True:
        labels = [
            str(Path(*p[-d:])) if p else m for m, p, d in zip(models, parts, depth, strict=True)
        ]
        clash = [i for i, lab in enumerate(labels) if labels.count(lab) > 1]
        if not clash:
            return labels
        if any(not parts[i] or depth[i] >= len(parts[i]) for i in clash):
            msg = f"--reranker {models[clash[0]]} is given twice"
            raise ValueError(msg)
        for i in clash:
            depth[i] += 1


def cmd_eval(args: argparse.Namespace) -> int:
    """Compare selectors on a QA file and write report.json, report.md and plots."""
    import shlex

    from dynrag.core.generative.answer_lm import AnswerGenerator
    from dynrag.core.interface import Reranker
    from dynrag.core.loading import cache_dir
    from dynrag.data.readers import drop_questions_in, read_examples
    from dynrag.eval.report import markdown_table, paired_table, write_report
    from dynrag.eval.runner import GenerationCache, evaluate, summarize
    from dynrag.eval.selectors import build_selectors

    try:
        examples = read_examples(args.data, args.format, None if args.exclude else args.limit)
        if args.exclude:  # drop first, then take --limit: the same N questions every time
            examples, dropped = drop_questions_in(examples, args.exclude)
            logger.info("dropped %d questions that appear in %s", dropped, args.exclude)
            examples = examples[: args.limit] if args.limit else examples
    except ValueError as err:
        raise SystemExit(str(err)) from None
    if not examples:
        raise SystemExit(f"{args.data}: no questions")
    has_gold = all(ex.gold is not None for ex in examples)
    models = args.reranker or [DEFAULT_MODEL]
    rerankers = []
    # --reranker models are loaded for `dynamic` and, when given, for the scorer-* baselines.
    if "dynamic" in args.selectors or (args.reranker and "scorer-" in args.selectors):
        try:
            labels = model_labels(models)
        except ValueError as err:
            raise SystemExit(str(err)) from None
        for name, label in zip(models, labels, strict=True):
            # Only what was given: each family takes the options that apply to it; an unset
            # max_k is the model's own.
            given = {"device": args.device, "dtype": args.dtype, "max_k": args.max_k}
            options = {k: v for k, v in given.items() if v is not None}
            try:
                rr = Reranker.from_pretrained(name, **options)
            except (OSError, TypeError, ValueError) as err:
                raise SystemExit(load_error(name, err)) from None
            rerankers.append((label, rr))
    try:
        selectors = build_selectors(args.selectors, rerankers, has_gold=has_gold)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    generator, count_tokens = None, None
    if args.no_answers:  # selections only; context tokens still by the generator's tokenizer
        from transformers import AutoTokenizer

        from dynrag.core.loading import resolve_model

        tokenizer = AutoTokenizer.from_pretrained(
            resolve_model(args.generator).path, trust_remote_code=False
        )
        count_tokens = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    else:
        generator = AnswerGenerator.from_pretrained(
            args.generator, device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens
        )
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in args.generator)
    cache = GenerationCache(
        None if args.no_cache else cache_dir() / "generations" / f"{safe}.jsonl"
    )
    records = evaluate(
        examples,
        selectors,
        generator,
        generator_id=args.generator,
        cache=cache,
        count_tokens=count_tokens,
    )
    summaries = summarize(records)
    meta = {
        "data": str(args.data),
        "questions": len(examples),
        "generator": args.generator,
        "rerankers": models,
        "selectors": args.selectors,
        "command": "dynrag eval " + shlex.join(args.argv),
    }
    paired = write_report(args.out, records, summaries, meta)
    print(markdown_table(summaries))
    if paired:
        print("\nselection F1, dynamic minus each baseline, paired by question:\n")
        print(paired_table(paired))
    print(f"\nwrote {args.out / 'report.json'}, {args.out / 'report.md'} and plots")
    return 0
