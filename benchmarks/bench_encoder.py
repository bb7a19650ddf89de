"""Speed and memory of the encoder family (the default reranker) against its targets.

Prints ratios measured side by side in one run (machines are noisy; absolute seconds are not).
The encoder and its bare forward pass are timed interleaved, query by query, and the batch
against the sequential calls in alternating rounds, so that a slow spell of the machine
falls on both sides of a ratio:

1. encoder rerank p50 / LLM reranker (dynrag-smollm2-135m) rerank p50, 10 passages  (<= 0.2)
2. encoder rerank p50 / one bare forward pass of its scorer over the same pairs    (<= 1.5)
3. throughput of ``rerank_batch`` of 8 / 8 sequential ``rerank`` calls             (>= 1.2)
4. peak RSS of a process that loads the default and reranks                          (<= 1 GB)

Run: ``python benchmarks/bench_encoder.py [--model dynrag-minilm-cut] [--queries 16] [--rounds 3]``
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
from dynrag.core.constants import DEFAULT_MODEL, GENERATIVE_MODEL

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


def padded_tokens(rr: Any, batch: list[tuple[str, list[dict[str, str]]]]) -> tuple[int, int]:
    """Padded tokens the scorer runs: 8 queries one by one, and the 8 as one batch.

    Their ratio bounds what batching can gain where one query's pairs already fill the cores
    (on a CPU): the batch only packs pairs of like length together.
    """
    from dynrag.core.encoder.scorer import pair_text

    scorer = rr.scorer
    lengths = []
    for query, passages in batch:
        texts = [pair_text(p["title"], p["text"]) for p in passages]
        enc = scorer.tokenizer(
            [query] * len(texts), texts, truncation="longest_first", max_length=scorer.max_length
        )
        lengths.append([len(ids) for ids in enc["input_ids"]])

    def padded(lens: list[int]) -> int:
        return sum(len(b) * lens[b[0]] for b in scorer._batches(lens))

    return sum(padded(lens) for lens in lengths), padded([n for lens in lengths for n in lens])


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
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--llm", default=GENERATIVE_MODEL)
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (median taken)")
    args = parser.parse_args()
    if args.rounds < 1 or args.queries < 1:
        parser.error("--rounds and --queries must be at least 1")
    qs = questions(args.queries)
    encoder = Reranker.from_pretrained(args.model)
    llm = Reranker.from_pretrained(args.llm)

    llm_p50 = p50(lambda q: llm.rerank(q[0], q[1]), qs[: max(4, args.queries // 4)])
    encoder.rerank(*qs[0])  # warm-up
    enc_times, bare_times = [], []
    for _ in range(args.rounds):
        for q, ps in qs:
            start = time.perf_counter()
            encoder.rerank(q, ps)
            enc_times.append(time.perf_counter() - start)
            bare_times.append(bare_forward(encoder, q, ps))
    enc_p50, bare = statistics.median(enc_times), statistics.median(bare_times)
    batch = qs[:8]
    sequential_times, batched_times = [], []
    encoder.rerank_batch([q for q, _ in batch], [ps for _, ps in batch])  # warm-up
    for _ in range(args.rounds + 2):  # a round is short: two more, for a steadier median
        start = time.perf_counter()
        for q, ps in batch:
            encoder.rerank(q, ps)
        sequential_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        encoder.rerank_batch([q for q, _ in batch], [ps for _, ps in batch])
        batched_times.append(time.perf_counter() - start)
    sequential = statistics.median(sequential_times)
    batched = statistics.median(batched_times)
    one_by_one, packed = padded_tokens(encoder, batch)
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
        f"3. batch of 8 (median of {len(batched_times)} rounds): {sequential:.2f} s sequential"
        f" / {batched:.2f} s batched = "
        f"{sequential / batched:.2f}x throughput  (target >= 1.2)"
    )
    print(
        f"   padded scorer tokens: {one_by_one} one by one / {packed} batched = "
        f"{one_by_one / packed:.2f}x (what packing alone can gain on a saturated CPU)"
    )
    print(f"4. peak RSS {rss / 2**30:.2f} GiB  (target <= 1)")


if __name__ == "__main__":
    main()
