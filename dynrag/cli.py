"""The ``dynrag`` command: ``rerank`` a JSONL file, or run the ``demo``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON objects of ``path`` with their line numbers; any problem is one line."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SystemExit(f"{path}: a folder, not a JSONL file") from None
    except OSError as err:
        raise SystemExit(f"{path}: cannot be read ({err.strerror})") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SystemExit(f"{path}:{number}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                msg = f"{path}:{number}: not valid JSON ({err.msg})"
                raise SystemExit(msg) from None
            if not isinstance(record, dict):
                msg = f"{path}:{number}: expected a JSON object"
                raise SystemExit(msg)
            yield number, record


def _query_and_passages(path: Path, number: int, record: dict[str, Any]) -> tuple[str, list[Any]]:
    """A line's query and passages, every passage checked; a bad one names its line."""
    from dynrag.core.interface import check_query
    from dynrag.core.types import to_passages

    query = record.get("query", record.get("question"))
    passages = record.get("passages", record.get("ctxs", record.get("docs")))
    if not isinstance(query, str) or not isinstance(passages, list):
        msg = (
            f"{path}:{number}: expected {{'query', 'passages': [...]}} or "
            "{'question', 'ctxs': [{'title', 'text'}]}"
        )
        raise SystemExit(msg)
    try:
        check_query(query)
        to_passages(passages)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"{path}:{number}: {err}") from None
    return query, passages


def cmd_rerank(args: argparse.Namespace) -> int:
    """Rerank every line of a JSONL file and write each line back with its selection.

    The whole input is checked before the model loads; the output is written to a temporary
    file beside it and renamed when complete, so an error leaves no partial output.
    """
    from tqdm.auto import tqdm

    rows = list(_read_jsonl(args.input))
    parsed = [_query_and_passages(args.input, n, r) for n, r in rows]
    check_policy(args)
    reranker = load_reranker(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{args.output.name}.", suffix=".part", dir=args.output.parent
    )
    try:
        with (
            os.fdopen(fd, "w", encoding="utf-8") as out,
            tqdm(total=len(rows), desc="rerank", unit="q") as bar,
        ):
            step = args.batch_size or 8
            for start in range(0, len(rows), step):
                chunk = parsed[start : start + step]
                began = time.perf_counter()
                try:
                    selections = reranker.rerank_batch([q for q, _ in chunk], [p for _, p in chunk])
                except (TypeError, ValueError) as err:  # checked above; a model-side refusal
                    lines = f"{rows[start][0]}-{rows[start + len(chunk) - 1][0]}"
                    raise SystemExit(f"{args.input}:{lines}: {err}") from None
                seconds = time.perf_counter() - began
                batch = rows[start : start + len(chunk)]
                for (_, record), sel in zip(batch, selections, strict=True):
                    record["selection"] = _selection_record(sel, seconds, len(chunk))
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                bar.update(len(chunk))
        os.replace(tmp_name, args.output)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    print(f"wrote {len(rows)} selections to {args.output}")
    return 0


def _selection_record(sel: Any, batch_seconds: float, batch_queries: int) -> dict[str, Any]:
    """A selection as written by ``dynrag rerank``.

    The queries of one batch are generated together, so their time is the batch's: written as
    ``batch_seconds`` with ``batch_queries`` (not as a per-query time that every line repeats).
    """
    record: dict[str, Any] = sel.model_dump(mode="json", exclude={"passages", "rerank_seconds"})
    record["batch_seconds"] = round(batch_seconds, 4)
    record["batch_queries"] = batch_queries
    return record


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the reranker over HTTP until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("dynrag serve needs uvicorn: pip install 'dynrag[serve]'") from None
    from dynrag.serve.app import create_app

    check_policy(args)
    app = create_app(
        load_reranker(args),
        max_body_bytes=args.max_body_bytes,
        max_documents=args.max_documents,
        max_query_chars=args.max_query_chars,
        max_title_chars=args.max_title_chars,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dynrag``."""
    parser = OneLineParser(
        prog="dynrag", description="Dynamic reranking for retrieval-augmented generation."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    rerank = sub.add_parser("rerank", help="rerank the passages of each line of a JSONL file")
    rerank.add_argument("--input", type=Path, required=True, help="JSONL: {query, passages}")
    rerank.add_argument("--output", type=Path, required=True, help="JSONL with a selection each")
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
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
