"""The ``dynrag`` command: ``rerank`` a JSONL file, or run the ``demo``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from dynrag.core.loading import DEFAULT_MODEL
from dynrag.core.policy import SelectionPolicy

logger = logging.getLogger("dynrag.cli")


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="folder, bundled name or hub id")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: auto)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="prompts per batch (default: 8 GPU, 1 CPU)"
    )
    parser.add_argument("--min-k", type=int, default=0, help="select at least this many")
    parser.add_argument("--max-k", type=int, default=None, help="select at most this many")
    parser.add_argument(
        "--no-empty", action="store_true", help="never select nothing (the model cannot say None)"
    )
    parser.add_argument("--window-size", type=int, default=None, help="candidates shown at once")
    parser.add_argument(
        "--max-passage-tokens", type=int, default=256, help="cut each passage to this many tokens"
    )


def _load(args: argparse.Namespace) -> Any:
    from dynrag.core.reranker import DynamicReranker

    policy = SelectionPolicy(min_k=args.min_k, max_k=args.max_k, allow_empty=not args.no_empty)
    return DynamicReranker.from_pretrained(
        args.model,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        policy=policy,
        window_size=args.window_size,
        max_passage_tokens=args.max_passage_tokens,
    )


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
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
    query = record.get("query", record.get("question"))
    passages = record.get("passages", record.get("ctxs", record.get("docs")))
    if not isinstance(query, str) or not isinstance(passages, list):
        msg = (
            f"{path}:{number}: expected {{'query', 'passages': [...]}} or "
            "{'question', 'ctxs': [{'title', 'text'}]}"
        )
        raise SystemExit(msg)
    return query, passages


def cmd_rerank(args: argparse.Namespace) -> int:
    """Rerank every line of a JSONL file and write each line back with its selection."""
    from tqdm.auto import tqdm

    rows = list(_read_jsonl(args.input))
    parsed = [_query_and_passages(args.input, n, r) for n, r in rows]
    reranker = _load(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with (
        args.output.open("w", encoding="utf-8") as out,
        tqdm(total=len(rows), desc="rerank", unit="q") as bar,
    ):
        step = args.batch_size or 8
        for start in range(0, len(rows), step):
            chunk = parsed[start : start + step]
            try:
                selections = reranker.rerank_batch([q for q, _ in chunk], [p for _, p in chunk])
            except (TypeError, ValueError) as err:
                line = (
                    rows[start][0]
                    if len(chunk) == 1
                    else f"{rows[start][0]}-{rows[start + len(chunk) - 1][0]}"
                )
                msg = f"{args.input}:{line}: {err}"
                raise SystemExit(msg) from None
            for (_, record), sel in zip(rows[start : start + len(chunk)], selections, strict=True):
                record["selection"] = sel.model_dump(mode="json", exclude={"passages"})
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            bar.update(len(chunk))
    print(f"wrote {len(rows)} selections to {args.output}")
    return 0


def _demo_records(limit: int | None) -> list[dict[str, Any]]:
    path = resources.files("dynrag.data").joinpath("demo_questions.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return records[:limit] if limit else records


def cmd_demo(args: argparse.Namespace) -> int:
    """Rerank a few real multi-hop questions and show what the model chose against the gold."""
    records = _demo_records(args.limit)
    print(f"dynrag demo: model {args.model!r} on {len(records)} real multi-hop questions")
    start = time.perf_counter()
    reranker = _load(args)
    print(f"model loaded in {time.perf_counter() - start:.1f} s\n")
    hits = picked = gold_total = 0
    for number, record in enumerate(records, start=1):
        sel = reranker.rerank(record["question"], record["passages"])
        gold = set(record["gold"])
        print(f"[{number}/{len(records)}] {record['question']}")
        print(f"  source: {record['source']}; answer: {record['answers'][0]}")
        for i, passage in enumerate(record["passages"], start=1):
            mark = ("gold" if i - 1 in gold else "").ljust(4)
            chosen = f"<- chosen #{sel.indices.index(i - 1) + 1}" if i - 1 in sel.indices else ""
            print(f"   {mark} [{i:>2}] {passage['title'][:60]:<60} {chosen}")
        chosen_ids = ", ".join(f"[{i + 1}]" for i in sel.indices) or "None"
        gold_ids = ", ".join(f"[{i + 1}]" for i in sorted(gold))
        print(f"  chosen: {chosen_ids}  (k={sel.k}, status={sel.status.value})")
        print(f"  gold:   {gold_ids}")
        print(f"  model wrote {sel.raw_output!r} in {sel.rerank_seconds:.1f} s\n")
        hits += len(gold & set(sel.indices))
        picked += sel.k
        gold_total += len(gold)
    precision = hits / picked if picked else 0.0
    recall = hits / gold_total if gold_total else 0.0
    print(
        f"summary: {picked} passages chosen for {len(records)} questions "
        f"(mean k {picked / max(len(records), 1):.1f}); selection precision {precision:.2f}, "
        f"recall {recall:.2f}; total {time.perf_counter() - start:.1f} s"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dynrag``."""
    parser = argparse.ArgumentParser(
        prog="dynrag", description="Dynamic reranking for retrieval-augmented generation."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    rerank = sub.add_parser("rerank", help="rerank the passages of each line of a JSONL file")
    rerank.add_argument("--input", type=Path, required=True, help="JSONL: {query, passages}")
    rerank.add_argument("--output", type=Path, required=True, help="JSONL with a selection each")
    _add_model_args(rerank)
    rerank.set_defaults(func=cmd_rerank)

    demo = sub.add_parser("demo", help="rerank a few real multi-hop questions and show the result")
    demo.add_argument("--limit", type=int, default=None, help="only the first N questions")
    _add_model_args(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dynrag`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
