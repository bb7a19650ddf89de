"""GRPO, feedback, full fine-tuning, resuming a killed stage, and the accelerate launch path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dynrag import DynamicReranker
from dynrag.core.loading import ModelConfig
from dynrag.data.jsonl import read_jsonl
from dynrag.training.cli import main


def _rerank_ok(ckpt: Path, example: dict[str, Any]) -> None:
    sel = DynamicReranker.from_pretrained(ckpt).rerank(example["question"], example["passages"])
    assert sel.k == len(sel.indices)


def test_grpo_stage_logs_reward_and_k(make_config: Any, tmp_path: Path, hotpot_val: Any) -> None:
    cfg = make_config(stages=["grpo"])
    assert main(["run", "--config", str(cfg)]) == 0
    steps = list(read_jsonl(tmp_path / "run" / "grpo" / "steps.jsonl"))
    assert steps
    assert all(0.0 <= s["reward"] <= 1.0 and s["mean_k"] >= 0 for s in steps)
    history = json.loads((tmp_path / "run" / "grpo" / "metrics.json").read_text())["log_history"]
    assert any("reward" in h for h in history)
    _rerank_ok(tmp_path / "run" / "grpo" / "checkpoint", hotpot_val[0])
    # GRPO is scored with the reward section: other weights are other settings
    other = make_config("other.yaml", stages=["grpo"], reward={"weights": {"selection": 1.0}})
    assert main(["run", "--config", str(other)]) == 2


def test_feedback_stage_trains_on_logged_preferences(
    make_config: Any, tmp_path: Path, hotpot_val: Any
) -> None:
    log = tmp_path / "feedback.jsonl"
    lines = []
    for ex in hotpot_val[:3]:
        passages = ex["passages"]
        lines.append(
            {
                "query": ex["question"],
                "passages": passages,
                "selection": ex["gold"],
                "answer": ex["answer"],
                "rating": 1.0,
            }
        )
        lines.append(
            {
                "query": ex["question"],
                "passages": passages,
                "selection": [9],
                "answer": "no idea",
                "rating": 0.1,
            }
        )
        lines.append(
            {
                "query": ex["question"],
                "passages": passages,
                "preferred": ex["gold"],
                "rejected": [3, 4, 5],
            }
        )
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cfg = make_config(
        stages=["feedback"],
        feedback={"path": [str(log)], "max_steps": 2, "gradient_accumulation_steps": 1},
    )
    assert main(["run", "--config", str(cfg)]) == 0
    pairs = list(read_jsonl(tmp_path / "run" / "feedback" / "pairs.jsonl"))
    assert len(pairs) == 6  # 3 explicit + 3 from ratings
    _rerank_ok(tmp_path / "run" / "feedback" / "checkpoint", hotpot_val[0])


def test_invalid_feedback_names_file_and_line(
    make_config: Any, tmp_path: Path, caplog: Any
) -> None:
    log = tmp_path / "bad.jsonl"
    good = {"query": "q", "passages": ["a", "b"], "selection": [0], "rating": 0.5}
    log.write_text(json.dumps(good) + "\n" + json.dumps({**good, "selection": [5]}) + "\n")
    cfg = make_config(stages=["feedback"], feedback={"path": [str(log)]})
    assert main(["run", "--config", str(cfg)]) == 2
    assert f"{log}:2" in caplog.text
    assert "outside 0..1" in caplog.text


def test_full_finetune_writes_full_weights(
    make_config: Any, tmp_path: Path, hotpot_val: Any
) -> None:
    cfg = make_config(stages=["bc"], bc={"full_finetune": True, "max_steps": 1})
    assert main(["run", "--config", str(cfg)]) == 0
    ckpt = tmp_path / "run" / "bc" / "checkpoint"
    config = ModelConfig.read(ckpt)
    assert config is not None
    assert not config.adapter
    assert config.base_model is None
    assert (ckpt / "model.safetensors").is_file()
    _rerank_ok(ckpt, hotpot_val[0])


def test_unknown_config_key_is_an_error(make_config: Any, caplog: Any) -> None:
    cfg = make_config(bc={"learning_rat": 1e-4})
    assert main(["bc", "--config", str(cfg)]) == 2
    assert "learning_rat" in caplog.text


@pytest.mark.slow
def test_killed_bc_stage_resumes_and_completes(make_config: Any, tmp_path: Path) -> None:
    cfg = make_config(stages=["bc"], bc={"max_steps": 40, "save_steps": 2, "batch_size": 1})
    trainer_dir = tmp_path / "run" / "bc" / "trainer"
    cmd = [sys.executable, "-m", "dynrag.training.cli", "bc", "--config", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (trainer_dir / "checkpoint-4").is_dir():
            time.sleep(0.2)
        assert (trainer_dir / "checkpoint-4").is_dir(), "training never reached step 4"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["bc"]["status"] == "running"
    assert not (tmp_path / "run" / "bc" / "checkpoint").exists()
    # what a kill while saving leaves: a newer checkpoint folder without its weights and state
    newest = max(int(p.name.split("-")[1]) for p in trainer_dir.glob("checkpoint-*"))
    partial = trainer_dir / f"checkpoint-{newest + 1}"
    partial.mkdir()
    (partial / "adapter_config.json").write_text("{}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"skipping {partial}" in done.stderr
    assert "resuming training from" in done.stderr
    state = json.loads((tmp_path / "run" / "bc" / "metrics.json").read_text())
    assert max(h.get("step", 0) for h in state["log_history"]) == 40
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["bc"]["status"] == "complete"


def test_interrupted_sampling_resumes_from_written_questions(
    make_config: Any, tmp_path: Path
) -> None:
    cfg = make_config(stages=["sample"])
    assert main(["sample", "--config", str(cfg)]) == 0
    out = tmp_path / "run" / "sample" / "samples.jsonl"
    lines = out.read_text().splitlines()
    # What a kill leaves: two complete questions, a torn third line, status still "running".
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    manifest_path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["stages"]["sample"]["status"] = "running"
    manifest_path.write_text(json.dumps(manifest))
    with out.open() as fh:
        torn = fh.read()
    out.write_text(torn[: torn.rfind("\n") + 1])  # the writer appends whole lines only
    assert main(["sample", "--config", str(cfg)]) == 0
    records = list(read_jsonl(out))
    assert [r["id"] for r in records] == [json.loads(x)["id"] for x in lines]
    assert records[:2] == [json.loads(x) for x in lines[:2]]


@pytest.mark.slow
def test_accelerate_launch_path_on_cpu(make_config: Any, tmp_path: Path) -> None:
    cfg = make_config(stages=["bc"], bc={"max_steps": 2})
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "dynrag.training.cli",
        "run",
        "--config",
        str(cfg),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "bc" / "checkpoint" / "dynrag_config.json").is_file()


def test_merged_weights_select_like_the_adapter(
    make_config: Any, tmp_path: Path, hotpot_val: Any
) -> None:
    cfg = make_config(stages=["bc"], save_merged=True, bc={"max_steps": 2})
    assert main(["run", "--config", str(cfg)]) == 0
    merged = tmp_path / "run" / "bc" / "merged"
    config = ModelConfig.read(merged)
    assert config is not None
    assert not config.adapter
    adapter = DynamicReranker.from_pretrained(tmp_path / "run" / "bc" / "checkpoint")
    full = DynamicReranker.from_pretrained(merged)
    for ex in hotpot_val[:3]:
        a = adapter.rerank(ex["question"], ex["passages"])
        b = full.rerank(ex["question"], ex["passages"])
        assert a.indices == b.indices


def test_force_reruns_a_completed_stage_from_scratch(make_config: Any, tmp_path: Path) -> None:
    cfg = make_config(stages=["bc"], bc={"max_steps": 2})
    assert main(["bc", "--config", str(cfg)]) == 0
    trainer = tmp_path / "run" / "bc" / "trainer"
    assert (trainer / "checkpoint-2").is_dir()
    cfg = make_config(stages=["bc"], bc={"max_steps": 1})
    assert main(["bc", "--config", str(cfg), "--force"]) == 0
    assert not (trainer / "checkpoint-2").exists()  # not resumed from the old run
    history = json.loads((tmp_path / "run" / "bc" / "metrics.json").read_text())["log_history"]
    assert max(h.get("step", 0) for h in history) == 1


def test_last_complete_checkpoint_skips_part_written_ones(tmp_path: Path) -> None:
    from dynrag.training.rundir import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "missing") is None
    assert last_complete_checkpoint(tmp_path) is None
    for step, complete in ((2, True), (10, True), (12, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()  # not a step: ignored
    # numeric order, not text order (10 > 2), and the part-written 12 is skipped
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
