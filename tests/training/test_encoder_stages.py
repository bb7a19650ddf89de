"""The encoder family's stages end to end on real questions: BC, generator-feedback RL, logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.training.conftest import HOTPOT_TRAIN, HOTPOT_VAL, SHARED_DATA, write_config

pytestmark = pytest.mark.slow

RETRIEVED = SHARED_DATA / "hotpotqa" / "hotpot_dev_retrieved.jsonl"


def _config(tmp_path: Path, generator: Path, **extra: Any) -> Path:
    cfg: dict[str, Any] = {
        "model": "all-minilm-l6-v2",
        "run_dir": str(tmp_path / "run"),
        "device": "cpu",
        "max_candidates": 10,
        "stages": ["encoder-bc", "encoder-rl"],
        "data": {
            "train": [str(HOTPOT_TRAIN), str(RETRIEVED)],
            "limit": 8,
            "exclude": [str(HOTPOT_VAL)],
        },
        "encoder-bc": {
            "model": {"max_length": 48, "embed_max_length": 24, "max_items": 6},
            "scorer": {"queries_per_batch": 4, "negatives": 2, "save_steps": 1},
            "head": {"epochs": 3, "calibration_fraction": 0.25},
            "scorer_fraction": 0.5,
            "cross_fit_folds": 2,
            "no_gold_fraction": 0.5,
        },
        "encoder-rl": {"max_k": 2, "questions": 3, "head": {"epochs": 3}},
        "reward": {"generator": str(generator), "max_answer_tokens": 4, "max_passage_tokens": 16},
        **extra,
    }
    return write_config(tmp_path / "cfg.yaml", cfg)


def test_bc_then_rl_then_feedback(tmp_path: Path, tiny_model_dir: Path, hotpot_val: Any) -> None:
    from dynrag import Reranker
    from dynrag.core.encoder.model import EncoderReranker
    from dynrag.training.cli import main

    ex = hotpot_val[0]
    log = tmp_path / "feedback.jsonl"  # in-house logs: the chosen selection is the head's target
    records = [
        {"query": ex["question"], "passages": ex["passages"], "preferred": [0], "rejected": [1, 2]},
        {"query": ex["question"], "passages": ex["passages"], "selection": [3], "rating": 0.9},
        {"query": ex["question"], "passages": ex["passages"], "selection": [4, 5], "rating": 0.1},
    ]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    config = _config(
        tmp_path,
        tiny_model_dir,
        **{"encoder-feedback": {"path": [str(log)], "head": {"epochs": 2}}},
    )
    assert main(["run", "--config", str(config)]) == 0
    run = tmp_path / "run"
    manifest = json.loads((run / "manifest.json").read_text())
    bc = manifest["stages"]["encoder-bc"]
    assert bc["status"] == "complete"
    # Cross-fitting: two fold scorers score the scorer's own questions for the head, and half of
    # the head's labelled questions come again without their gold passages.
    assert (run / "encoder-bc" / "scorer-fold0" / "adapter").is_dir()
    assert (run / "encoder-bc" / "scorer-fold1" / "adapter").is_dir()
    out = bc["outputs"]
    assert out["head_training_questions"] > out["head_questions"] + out["scorer_questions"]
    rows = [json.loads(x) for x in (run / "encoder-rl" / "rewards.jsonl").read_text().splitlines()]
    assert {r["k"] for r in rows} == {0, 1, 2}  # every prefix of 3 questions
    assert len(rows) == 9
    assert all(0.0 <= r["reward"] <= 1.0 for r in rows)
    summary = json.loads((run / "encoder-rl" / "summary.json").read_text())
    assert summary["questions"] == 3
    rr = Reranker.from_pretrained(run / "encoder-rl" / "checkpoint")
    assert isinstance(rr, EncoderReranker)
    sel = rr.rerank(ex["question"], ex["passages"])
    assert sel.stop_probability is not None
    assert len(set(sel.indices)) == sel.k

    # A second run skips both (complete), and the cached rewards are reused.
    mtime = (run / "encoder-rl" / "rewards.jsonl").stat().st_mtime
    assert main(["run", "--config", str(config)]) == 0
    assert (run / "encoder-rl" / "rewards.jsonl").stat().st_mtime == mtime

    # Feedback logs, from the run's newest model (encoder-rl).
    assert main(["encoder-feedback", "--config", str(config)]) == 0
    out = json.loads((run / "encoder-feedback" / "head.json").read_text())
    assert out["pairs"] == 2
    assert isinstance(
        Reranker.from_pretrained(run / "encoder-feedback" / "checkpoint"), EncoderReranker
    )
