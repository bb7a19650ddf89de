"""What both ship scripts do, once.

Copy a checkpoint's files into the package folder of a bundled model, point its adapter at the
public base model, and record the NOTICE and the provenance (the run's manifest: per-stage
outputs and input hashes, the config and the versions).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "dynrag" / "models"


def copy_files(src: Path, dest: Path, files: list[str]) -> None:
    """Replace ``dest`` with ``files`` (paths relative to ``src``) copied from ``src``."""
    if dest.exists():
        shutil.rmtree(dest)
    for name in files:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / name, dest / name)


def rebase_adapter(adapter_config: Path, hub_id: str) -> None:
    """Name the base model by its hub id in a PEFT adapter config (not this machine's path)."""
    cfg = json.loads(adapter_config.read_text())
    cfg["base_model_name_or_path"] = hub_id
    adapter_config.write_text(json.dumps(cfg, indent=2) + "\n")


def finish(src: Path, dest: Path, notice: str) -> None:
    """Write the NOTICE and provenance.json, and print the shipped size."""
    manifest = json.loads((src.parents[1] / "manifest.json").read_text())
    provenance = {
        "checkpoint": f"{src.parent.name}/checkpoint",
        "stages": {k: v.get("outputs", {}) for k, v in manifest["stages"].items()},
        "inputs": {k: v.get("inputs", {}) for k, v in manifest["stages"].items()},
        "config": manifest.get("config"),
        "versions": manifest.get("versions"),
    }
    (dest / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    (dest / "NOTICE").write_text(notice)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) / 1e6
    print(f"shipped {src} to {dest} ({size:.1f} MB)")
