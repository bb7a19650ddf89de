"""Speed and memory of reranking with SmolLM2-135M-Instruct on real candidates.

Prints ratios measured side by side in one run (machines are noisy; absolute seconds are not):

1. rerank time / one bare forward pass over the same prompt        (target <= 1.25)
2. plain unconstrained ``model.generate`` / our rerank, same inputs (target >= 2)
3. throughput of ``rerank_batch`` of 8 / 8 sequential ``rerank``    (target >= 1.5)
4. peak RSS / (2 x weights + 1 GB)                                  (target <= 1)

Run: ``python benchmarks/bench_rerank.py [--queries 8] [--sizes 10 20] [--batch-size 8]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from dynrag import DynamicReranker
from dynrag.core.constants import DEFAULT_GENERATOR

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_questions(size: int, count: int) -> list[tuple[str, list[dict[str, str]]]]:
    """Real questions with ``size`` candidates: HotpotQA (10) or MuSiQue (20)."""
    if size <= 10:
        data = json.loads((SHARED / "hotpotqa" / "hotpot_dev_distractor_val.json").read_text())
        return [
            (ex["question"], [{"title": t, "text": "".join(s)} for t, s in ex["context"]][:size])
            for ex in data[:count]
        ]
    rows = [
        json.loads(line)
        for line in (SHARED / "musique" / "musique_ans_v1.0_train_subset.jsonl").open()
    ]
    return [
        (
            r["question"],
            [{"title": p["title"], "text": p["paragraph_text"]} for p in r["paragraphs"]][:size],
        )
        for r in rows[:count]
    ]


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_GENERATOR)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--batch-size", type=int, default=8, help="rerank_batch's batch size")
    args = parser.parse_args()

    rr = DynamicReranker.from_pretrained(args.model, batch_size=args.batch_size)
    backend: Any = rr.backend
    model, tok = backend.model, backend.tokenizer
    weights_gb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1024**3
    print(
        f"model {args.model}: weights {weights_gb:.2f} GB, torch threads {torch.get_num_threads()}"
    )

    for size in args.sizes:
        questions = load_questions(size, args.queries)
        fwd, ours, plain, k_values = [], [], [], []
        for query, passages in questions:
            state = rr._prepare(query, passages, rr.policy)
            prompt = backend.render(rr.prompt_format.messages(query, state.shown))
            enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
            with torch.inference_mode():
                t = time.perf_counter()
                model(**enc)
                fwd.append(time.perf_counter() - t)
            t = time.perf_counter()
            sel = rr.rerank(query, passages)
            ours.append(time.perf_counter() - t)
            k_values.append(sel.k)
            with torch.inference_mode():
                t = time.perf_counter()
                out = model.generate(
                    **enc, max_new_tokens=100, do_sample=False, pad_token_id=tok.pad_token_id
                )
                plain.append(time.perf_counter() - t)
        plain_tokens = out.shape[1] - enc["input_ids"].shape[1]
        t = time.perf_counter()
        rr.rerank_batch([q for q, _ in questions], [p for _, p in questions])
        batch_time = time.perf_counter() - t
        prompt_tokens = enc["input_ids"].shape[1]
        print(
            f"\n{size} candidates, {len(questions)} questions (last prompt {prompt_tokens} tokens)"
        )
        print(f"  bare forward pass     mean {statistics.mean(fwd):.2f} s")
        print(
            f"  rerank                mean {statistics.mean(ours):.2f} s  (mean k {statistics.mean(k_values):.1f})"
        )
        print(
            f"  plain generate        mean {statistics.mean(plain):.2f} s  (last wrote {plain_tokens} tokens)"
        )
        print(f"  rerank / forward      {sum(ours) / sum(fwd):.2f}   target <= 1.25")
        print(f"  plain generate / ours {sum(plain) / sum(ours):.2f}   target >= 2")
        print(
            f"  batch of {len(questions)} throughput / sequential {sum(ours) / batch_time:.2f}"
            f"   target >= 1.5  (batch {batch_time:.1f} s, sequential {sum(ours):.1f} s)"
        )
    peak = rss_gb()
    print(
        f"\npeak RSS {peak:.2f} GB; budget 2 x weights + 1 GB = {2 * weights_gb + 1:.2f} GB;"
        f" ratio {peak / (2 * weights_gb + 1):.2f}   target <= 1"
    )


if __name__ == "__main__":
    main()
