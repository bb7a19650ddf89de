"""Speed and memory of the encoder family (the default reranker) against its targets.

Prints ratios measured side by side in one run (machines are noisy; absolute seconds are not):

1. encoder rerank p50 / LLM reranker (dynrag-smollm2-135m) rerank p50, 10 passages  (<= 0.2)
2. encoder rerank p50 / one bare forward pass of its scorer over the same pairs    (<= 1.5)
3. throughput of ``rerank_batch`` of 8 / 8 sequential ``rerank`` calls             (>= 1.2)
4. peak RSS of a process that loads the default and reranks                          (<= 1 GB)

Run: ``python benchmarks/bench_encoder.py [--model dynrag-minilm-cut] [--queries 16]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from dynrag import Reranker

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def questions(count: int) -> list[tuple[str, list[dict[str, str]]]]:
    """HotpotQA validation questions with their 10 candidates."""
    data = json.loads((SHARED / "hotpotqa" / "hotpot_dev_distractor_val.json").read_text())
    return [
        (ex["question"], [{"title": t, "text": "".join(s)} for t, s in ex["context"]])
        for ex in data[:count]
    ]


def p50(fn: Any, items: list[Any]) -> float:
    """Median seconds of ``fn(item)`` over ``items`` (after one warm-up call)."""
    fn(items[0])
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare_forward(rr: Any, query: str, passages: list[dict[str, str]]) -> float:
    """One forward pass of the scorer's cross-encoder over the 10 pairs, tokenised beforehand."""
    from dynrag.core.encoder.scorer import pair_text

    scorer = rr.scorer
    texts = [pair_text(p["title"], p["text"]) for p in passages]
    enc = scorer.tokenizer(
        [query] * len(texts),
        texts,
        truncation="longest_first",
        max_length=scorer.max_length,
        padding=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        start = time.perf_counter()
        scorer.cross(**enc)
        return time.perf_counter() - start


RSS_CHILD = """
import json, resource, sys
from dynrag import Reranker
rr = Reranker.from_pretrained(sys.argv[1])
qs = json.loads(sys.stdin.read())
for q, ps in qs:
    rr.rerank(q, ps)
rr.rerank_batch([q for q, _ in qs], [ps for _, ps in qs])
try:  # this process's own peak (VmHWM)
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM:"))
    print(int(hwm.split()[1]) * 1024)
except OSError:  # not Linux: ru_maxrss (bytes on macOS)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
"""The peak RSS is read from ``/proc/self/status``, not ``ru_maxrss``: on Linux a child started
by ``subprocess`` (vfork + exec) inherits its parent's ``ru_maxrss`` high-water mark, so it
reported this benchmark's own peak, with both rerankers loaded (1.5 GiB), instead of the
child's."""


def main() -> None:
    """Run the four measurements and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dynrag-minilm-cut")
    parser.add_argument("--llm", default="dynrag-smollm2-135m")
    parser.add_argument("--queries", type=int, default=16)
    args = parser.parse_args()
    qs = questions(args.queries)
    encoder = Reranker.from_pretrained(args.model)
    llm = Reranker.from_pretrained(args.llm)

    enc_p50 = p50(lambda q: encoder.rerank(q[0], q[1]), qs)
    llm_p50 = p50(lambda q: llm.rerank(q[0], q[1]), qs[: max(4, args.queries // 4)])
    bare = statistics.median(bare_forward(encoder, q, ps) for q, ps in qs)
    batch = qs[:8]
    start = time.perf_counter()
    for q, ps in batch:
        encoder.rerank(q, ps)
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    encoder.rerank_batch([q for q, _ in batch], [ps for _, ps in batch])
    batched = time.perf_counter() - start
    child = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, args.model],
        input=json.dumps(qs[:8]),
        capture_output=True,
        text=True,
        check=True,
    )
    rss = int(child.stdout.strip().splitlines()[-1])

    print(f"encoder {args.model} vs LLM {args.llm}, {len(qs)} HotpotQA questions, 10 passages")
    print(
        f"1. encoder p50 {enc_p50:.3f} s / LLM p50 {llm_p50:.3f} s = {enc_p50 / llm_p50:.3f}"
        "  (target <= 0.2)"
    )
    print(
        f"2. encoder p50 {enc_p50:.3f} s / bare scorer forward {bare:.3f} s = "
        f"{enc_p50 / bare:.2f}  (target <= 1.5)"
    )
    print(
        f"3. batch of 8: {sequential:.2f} s sequential / {batched:.2f} s batched = "
        f"{sequential / batched:.2f}x throughput  (target >= 1.2)"
    )
    print(f"4. peak RSS {rss / 2**30:.2f} GiB  (target <= 1)")


if __name__ == "__main__":
    main()
