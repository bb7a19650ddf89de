"""A tiny pipeline config over the tiny random model and real HotpotQA training questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

HOTPOT_TRAIN = SHARED_DATA / "hotpotqa" / "hotpot_dev_distractor_train.json"
HOTPOT_VAL = SHARED_DATA / "hotpotqa" / "hotpot_dev_distractor_val.json"


def tiny_config(model: Path, run_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A pipeline config that runs in seconds on the tiny model."""
    cfg: dict[str, Any] = {
        "model": str(model),
        "run_dir": str(run_dir),
        "device": "cpu",
        "max_passage_tokens": 24,
        "max_candidates": 10,
        "data": {"train": [str(HOTPOT_TRAIN)], "limit": 6, "exclude": [str(HOTPOT_VAL)]},
        "bc": {
            "teacher": "bm25",
            "max_steps": 3,
            "batch_size": 2,
            "gradient_accumulation_steps": 1,
            "save_steps": 1,
            "learning_rate": 1e-3,
        },
        "sample": {"n": 4, "temperature": 1.0},
        "reward": {"generator": str(model), "max_answer_tokens": 6, "max_passage_tokens": 24},
        "pairs": {"margin": 0.0},
        "dpo": {"max_steps": 2, "gradient_accumulation_steps": 1, "save_steps": 1},
        "grpo": {"max_steps": 2, "num_generations": 2, "gradient_accumulation_steps": 1},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture
def make_config(tiny_model_dir: Path, tmp_path: Path) -> Any:
    def make(name: str = "cfg.yaml", **overrides: Any) -> Path:
        cfg = tiny_config(tiny_model_dir, tmp_path / "run", **overrides)
        return write_config(tmp_path / name, cfg)

    return make
