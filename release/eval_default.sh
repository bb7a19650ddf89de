#!/usr/bin/env bash
# The reports behind the encoder default's result tables (README, docs/results.md), held-out only.
#   [OUT=DIR] bash release/eval_default.sh [BC_CHECKPOINT] [RL_CHECKPOINT]
# (defaults: the run directory of configs/minilm-cut.yaml). Reports go to $OUT (default
# release/reports/dynrag-minilm-cut/).
set -euo pipefail
cd "$(dirname "$0")/.."
BC=${1:-runs/minilm-cut/encoder-bc/checkpoint}
RL=${2:-runs/minilm-cut/encoder-rl/checkpoint}
OUT=${OUT:-release/reports/dynrag-minilm-cut}
SEL="dynamic,scorer-k:1,2,3,4,scorer-threshold:0.3,0.5,0.7,scorer-gap,hybrid-k:1,2,all,oracle"
RR=(--reranker "$RL" --reranker "$BC")

# hybrid-k:2 selects what the generative dynrag-smollm2-135m selects on every question (README).
# HotpotQA validation, distractor setting (10 candidates, 2 gold): answers from the generator on
# the first 50 (CPU time), selections on all 100.
dynrag eval --data ../shared/data/hotpotqa/hotpot_dev_distractor_val.json --limit 50 \
  "${RR[@]}" \
  --selectors "dynamic,scorer-k:1,2,3,scorer-threshold:0.5,scorer-gap,hybrid-k:2" \
  --out "$OUT/hotpotqa-val-answers"
dynrag eval --data ../shared/data/hotpotqa/hotpot_dev_distractor_val.json --no-answers \
  "${RR[@]}" --selectors "$SEL" --out "$OUT/hotpotqa-val"
# Real retrieval, 0-2 gold passages present: the retrieved file's 50 evaluation questions, with
# the generator's answers (the shipped BC model against the fixed k), then selections only.
dynrag eval --data data/hotpotqa-retrieved-eval/hotpot_dev_retrieved_eval50.jsonl --reranker "$BC" \
  --selectors "dynamic,scorer-k:1,2,3,4,scorer-threshold:0.7,hybrid-k:2" \
  --out "$OUT/hotpotqa-retrieved-answers"
dynrag eval --data data/hotpotqa-retrieved-eval/hotpot_dev_retrieved_eval50.jsonl --no-answers \
  "${RR[@]}" --selectors "$SEL" --out "$OUT/hotpotqa-retrieved"
# Held-out multi-hop: 2WikiMultihopQA (2 or 4 gold), MuSiQue (2-4 gold, 20 candidates), and the
# 24 written questions.
dynrag eval --data data/heldout/2wiki_heldout.json --no-answers "${RR[@]}" --selectors "$SEL" \
  --out "$OUT/2wiki-heldout"
dynrag eval --data data/heldout/musique_heldout.jsonl --no-answers "${RR[@]}" --selectors "$SEL" \
  --out "$OUT/musique-heldout"
dynrag eval --data data/heldout/heldout_multihop.json --no-answers "${RR[@]}" --selectors "$SEL" \
  --out "$OUT/heldout-written"
# No gold passage at all: the HotpotQA validation questions without their gold paragraphs (the
# right selection is k = 0; selection F1 is then the share of questions cut to k = 0).
dynrag eval --data data/heldout/hotpotqa_val_nogold.json --no-answers "${RR[@]}" --selectors "$SEL" \
  --out "$OUT/hotpotqa-val-nogold"
