"""``dynrag demo``: rerank a few real multi-hop questions and show what the model chose and why."""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from typing import Any

from dynrag.model_options import check_policy, load_reranker

__all__ = ["cmd_demo"]


def _demo_records(limit: int | None) -> list[dict[str, Any]]:
    path = resources.files("dynrag.data").joinpath("demo_questions.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return records[:limit] if limit else records


def cmd_demo(args: argparse.Namespace) -> int:
    """Rerank a few real multi-hop questions and show what the model chose against the gold."""
    records = _demo_records(args.limit)
    check_policy(args)
    print(f"dynrag demo: model {args.model!r} on {len(records)} real multi-hop questions")
    start = time.perf_counter()
    reranker = load_reranker(args)
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
        said = f"wrote {sel.raw_output!r}" if sel.raw_output else "; ".join(sel.notes)
        print(f"  model {said} in {sel.rerank_seconds:.1f} s{_read_as(sel)}")
        print(f"  why k={sel.k}: {_why(sel)}\n")
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


def _why(sel: Any) -> str:
    """Why the model stopped where it did, in words."""
    if sel.stop_probability is None:
        return "the model wrote these ids and then its end (no stop probability estimated)"
    p = sel.stop_probability
    if sel.k == 0:
        return f"no candidate is needed, it estimates (probability {p:.2f}): none answers it"
    return (
        f"k={sel.k} is its most likely cut; it estimates a {p:.2f} probability that these "
        f"{sel.k} suffice (no further candidate needed)"
    )


def _read_as(sel: Any) -> str:
    """How the ids the model wrote map to the ids listed (they differ after a presort)."""
    if not sel.shown_order:
        return ""
    if "\n" in sel.raw_output:  # a tournament: each window numbers its own candidates
        return "; its ids number each window's candidates, not the list above"
    pairs = ", ".join(f"[{j}] = [{i + 1}]" for j, i in enumerate(sel.shown_order, start=1))
    return f"; its ids number the presorted order it read: {pairs}"
