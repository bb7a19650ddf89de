"""The model options every ``dynrag`` command shares: their flags, their checks, the loading.

``rerank``, ``demo`` and ``serve`` name a model and a selection policy the same way; the policy
flags are checked against the model's own (its recorded ``max_k``) before any weight is loaded,
and every failure is one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from dynrag.core.constants import DEFAULT_MODEL
from dynrag.core.loading import load_error
from dynrag.core.presort import PRESORT_METHODS

__all__ = [
    "NON_NEGATIVE",
    "POSITIVE",
    "OneLineParser",
    "add_model_args",
    "check_policy",
    "count",
    "load_reranker",
    "policy_options",
]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line naming what to fix."""

    def error(self, message: str) -> Any:
        """Exit with status 2 and one line (argparse prints the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


NON_NEGATIVE = count(0)
POSITIVE = count(1)

_FLAGS = {
    "min_k": "--min-k",
    "max_k": "--max-k",
    "allow_empty": "--no-empty",
    "fallback_k": "--fallback-k",
    "token_budget": "--token-budget",
}


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model and policy flags (``--model``, ``--min-k``, ``--max-k``...)."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="folder, bundled name or hub id")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: auto)")
    parser.add_argument(
        "--batch-size",
        type=POSITIVE,
        default=None,
        help="prompts per batch (default: 8 GPU, 1 CPU)",
    )
    parser.add_argument(
        "--min-k", type=NON_NEGATIVE, default=None, help="select at least this many"
    )
    parser.add_argument(
        "--max-k",
        type=NON_NEGATIVE,
        default=None,
        help="select at most this many (default: the model's)",
    )
    parser.add_argument(
        "--no-empty", action="store_true", help="never select nothing (the model cannot say None)"
    )
    parser.add_argument(
        "--fallback-k",
        type=NON_NEGATIVE,
        default=None,
        help="on unusable model output keep this many in retrieval order (default: all)",
    )
    parser.add_argument(
        "--token-budget",
        type=POSITIVE,
        default=None,
        help="cut the selection's tail until it totals at most this many tokens",
    )
    parser.add_argument(
        "--window-size", type=count(2), default=None, help="candidates shown at once"
    )
    parser.add_argument(
        "--max-passage-tokens",
        type=POSITIVE,
        default=None,
        help="cut each passage to this many tokens (default: the model's limit, else 256)",
    )
    parser.add_argument(
        "--presort",
        choices=[*PRESORT_METHODS, "none"],
        default=None,
        help="order candidates before the model reads them (default: as the model was trained)",
    )


def policy_options(args: argparse.Namespace) -> dict[str, Any]:
    """The policy options the command line gives (the others are the model's own)."""
    given: dict[str, Any] = {
        "min_k": args.min_k,
        "max_k": args.max_k,
        "fallback_k": args.fallback_k,
        "token_budget": args.token_budget,
    }
    if args.no_empty:
        given["allow_empty"] = False
    return {name: value for name, value in given.items() if value is not None}


def check_policy(args: argparse.Namespace) -> None:
    """Check the policy flags against each other and the model's own ``max_k``.

    The model's ``max_k`` is read from its ``dynrag_config.json``, before any weight is loaded
    (a server URL: checked by the server); a failure is one line naming the flags.
    """
    from dynrag.core.policy import SelectionPolicy

    recorded: int | None = None
    if not args.model.startswith(("http://", "https://")) and args.max_k is None:
        from dynrag.core.loading import resolve_model

        try:
            recorded = resolve_model(args.model).config.max_k
        except (OSError, ValueError) as err:
            raise SystemExit(load_error(args.model, err)) from None
    given = policy_options(args)
    try:
        SelectionPolicy.for_model(recorded).merged_or_explain(given)
    except ValueError as err:
        message = str(err).replace("give max_k", "give --max-k")
        for name in given:  # the options given are named by their flags
            flag = _FLAGS[name]
            message = message.replace(f"{name} (", f"{flag} (").replace(f"{name} 0", f"{flag} 0")
        raise SystemExit(message) from None


def load_reranker(args: argparse.Namespace) -> Any:
    """The reranker the command line names; a model that cannot be loaded is one line."""
    from dynrag.core.interface import Reranker

    # Unset options fall back to the model's dynrag_config.json (its max_k, passage limit,
    # presort), so the CLI runs a trained model as it was trained.
    options = policy_options(args)
    if args.max_passage_tokens is not None:
        options["max_passage_tokens"] = args.max_passage_tokens
    if args.presort is not None:
        options["presort"] = None if args.presort == "none" else args.presort
    given = {"device": args.device, "dtype": args.dtype, "batch_size": args.batch_size}
    given["window_size"] = args.window_size
    # Only what was given: each model family takes the options that apply to it.
    options.update({k: v for k, v in given.items() if v is not None})
    try:
        return Reranker.from_pretrained(args.model, **options)
    except (OSError, TypeError, ValueError) as err:  # unreachable hub, an option the family
        raise SystemExit(load_error(args.model, err)) from None  # does not take: one line
