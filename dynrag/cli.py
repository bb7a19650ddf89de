"""The ``dynrag`` command: ``rerank`` a JSONL file, or run the ``demo``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from dynrag.core.constants import DEFAULT_GENERATOR, DEFAULT_MODEL
from dynrag.demo import cmd_demo
from dynrag.eval.command import cmd_eval, model_labels
from dynrag.model_options import (
    NON_NEGATIVE,
    POSITIVE,
    OneLineParser,
    add_model_args,
    check_policy,
    load_reranker,
)
from dynrag.rerank_command import cmd_rerank

__all__ = [
    "build_parser",
    "cmd_demo",
    "cmd_eval",
    "cmd_rerank",
    "cmd_serve",
    "main",
    "model_labels",
]

logger = logging.getLogger("dynrag.cli")


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the reranker over HTTP until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("dynrag serve needs uvicorn: pip install 'dynrag[serve]'") from None
    from dynrag.serve.app import create_app
    from dynrag.serve.limits import header_timeout_protocol

    check_policy(args)
    app = create_app(
        load_reranker(args),
        max_body_bytes=args.max_body_bytes,
        max_documents=args.max_documents,
        max_query_chars=args.max_query_chars,
        max_title_chars=args.max_title_chars,
        max_queue=args.max_queue,
        body_timeout=args.body_timeout,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        limit_concurrency=args.max_connections,  # past it: 503 at once
        timeout_keep_alive=args.keep_alive,  # idle, and headers not all in: closed
        http=header_timeout_protocol(),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dynrag``."""
    parser = OneLineParser(
        prog="dynrag", description="Dynamic reranking for retrieval-augmented generation."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    rerank = sub.add_parser("rerank", help="rerank the passages of each line of a JSONL file")
    rerank.add_argument(
        "--input", required=True, help="JSONL of {query, passages}; - reads standard input"
    )
    rerank.add_argument(
        "--output",
        required=True,
        help="JSONL with a selection each, written in place when complete; - writes standard "
        "output",
    )
    add_model_args(rerank)
    rerank.set_defaults(func=cmd_rerank)

    demo = sub.add_parser("demo", help="rerank a few real multi-hop questions and show the result")
    demo.add_argument("--limit", type=POSITIVE, default=None, help="only the first N questions")
    add_model_args(demo)
    demo.set_defaults(func=cmd_demo)

    ev = sub.add_parser("eval", help="compare dynamic k with fixed-k baselines on a QA file")
    ev.add_argument("--data", type=Path, required=True, help="HotpotQA, 2Wiki, MuSiQue or ctxs")
    ev.add_argument("--format", default=None, help="hotpotqa, 2wikimultihopqa, musique, ctxs")
    ev.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ev.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        help="drop questions that appear in this file (e.g. training data); repeatable; "
        "applied before --limit",
    )
    ev.add_argument(
        "--reranker",
        action="append",
        default=None,
        help=f"reranker model for 'dynamic' (repeat to compare several; default {DEFAULT_MODEL})",
    )
    ev.add_argument(
        "--generator",
        default=DEFAULT_GENERATOR,
        help="causal LM that answers (default %(default)s)",
    )
    ev.add_argument(
        "--selectors",
        default="dynamic,all,first-k:2,embed-k:1,2,3,5,bm25-k:2,oracle",
        help="comma-separated selectors (see dynrag.eval.selectors)",
    )
    ev.add_argument("--max-k", type=NON_NEGATIVE, default=None, help="cap the dynamic selectors' k")
    ev.add_argument("--max-new-tokens", type=int, default=32, help="answer length cap")
    ev.add_argument("--no-cache", action="store_true", help="do not reuse cached generations")
    ev.add_argument(
        "--no-answers",
        action="store_true",
        help="score the selections only (no generator answers: much faster on a CPU)",
    )
    ev.add_argument("--device", default=None)
    ev.add_argument("--dtype", default=None)
    ev.add_argument("--out", type=Path, required=True, help="folder for the report")
    ev.set_defaults(func=cmd_eval)

    serve = sub.add_parser("serve", help="serve the reranker over HTTP (POST /v1/rerank)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-body-bytes", type=POSITIVE, default=2_000_000)
    serve.add_argument("--max-documents", type=POSITIVE, default=200)
    serve.add_argument(
        "--max-queue",
        type=POSITIVE,
        default=64,
        help="requests not yet answered at most (those in the model too); past it 503 at once "
        "(default 64)",
    )
    serve.add_argument(
        "--max-connections",
        type=POSITIVE,
        default=256,
        help="connections and requests open at once; past it 503 (default 256)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        help="seconds a request body may take to arrive; then 408 (default 30)",
    )
    serve.add_argument(
        "--keep-alive",
        type=float,
        default=5.0,
        help="seconds an idle connection, or one whose headers have not all arrived, is kept",
    )
    serve.add_argument(
        "--max-query-chars", type=POSITIVE, default=4_000, help="longer queries get 422"
    )
    serve.add_argument(
        "--max-title-chars", type=POSITIVE, default=1_000, help="longer titles get 422"
    )
    add_model_args(serve)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dynrag`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)[1:]
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # one line, not a traceback
        print(f"dynrag {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
