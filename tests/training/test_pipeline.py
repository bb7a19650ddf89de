"""The whole pipeline end to end on the tiny random model: every stage, resumability, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dynrag import DynamicReranker
from dynrag.core.loading import ModelConfig
from dynrag.data.jsonl import read_jsonl
from dynrag.training.cli import main
from dynrag.training.pipeline import load_config

from .conftest import HOTPOT_TRAIN


@pytest.fixture(scope="module")
def pipeline_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .conftest import tiny_config, write_config

    base = tmp_path_factory.mktemp("pipeline")
    # The published recipe's presort, through every stage.
    config = tiny_config(tiny_model_dir, base / "run", presort="bm25")
    cfg = write_config(base / "cfg.yaml", config)
    assert main(["run", "--config", str(cfg)]) == 0
    return base


def test_every_stage_completes_and_is_recorded(pipeline_run: Path) -> None:
    run = pipeline_run / "run"
    manifest = json.loads((run / "manifest.json").read_text())
    assert [s for s, e in manifest["stages"].items() if e["status"] == "complete"] == [
        "bc",
        "sample",
        "reward",
        "pairs",
        "dpo",
    ]
    assert manifest["config"]["seed"] == 0
    assert {"torch", "transformers", "trl", "peft", "dynrag"} <= set(manifest["versions"])
    bc_inputs = manifest["stages"]["bc"]["inputs"]
    assert len(bc_inputs[str(HOTPOT_TRAIN)]) == 64  # sha256 of the training file
    for stage in ("bc", "dpo"):
        history = json.loads((run / stage / "metrics.json").read_text())["log_history"]
        assert any("loss" in h for h in history)
    assert (run / "plots" / "training.png").stat().st_size > 10_000


def test_bc_targets_are_the_experts_own_selection(pipeline_run: Path) -> None:
    experts = json.loads((pipeline_run / "run" / "bc" / "experts.json").read_text())
    assert len(experts) == 6
    for e in experts:
        assert sorted(e["indices"]) == sorted(e["gold"])  # never padded, never cut


def test_samples_rewards_and_pairs(pipeline_run: Path) -> None:
    run = pipeline_run / "run"
    samples = list(read_jsonl(run / "sample" / "samples.jsonl"))
    assert len(samples) == 6
    assert all(len(r["samples"]) == 4 for r in samples)
    for r in samples:
        for s in r["samples"]:
            assert len(set(s["indices"])) == len(s["indices"])
            assert all(0 <= i < len(r["passages"]) for i in s["indices"])
    rewards = list(read_jsonl(run / "reward" / "rewards.jsonl"))
    for r in rewards:
        for s in r["samples"]:
            terms = s["terms"]
            assert {"em", "f1", "gold_likelihood", "brevity"} <= {
                k for k, v in terms.items() if v is not None
            }
            assert 0.0 <= s["reward"] <= 1.0
    pairs = list(read_jsonl(run / "pairs" / "pairs.jsonl"))
    assert pairs
    for p in pairs:
        assert p["chosen_reward"] > p["rejected_reward"]


def test_checkpoint_loads_and_reranks(pipeline_run: Path, hotpot_val: list[Any]) -> None:
    ckpt = pipeline_run / "run" / "dpo" / "checkpoint"
    cfg = ModelConfig.read(ckpt)
    assert cfg is not None
    assert cfg.adapter
    assert cfg.base_model
    assert cfg.max_passage_tokens == 24
    assert not (ckpt / "ref").exists()  # DPO's frozen reference adapter is not shipped
    assert cfg.max_k == 2  # HotpotQA experts select 2 passages: the model's default cap
    assert cfg.presort == "bm25"  # trained on BM25-ordered candidates: inference does the same
    rr = DynamicReranker.from_pretrained(ckpt)
    assert rr.policy.max_k == 2
    assert rr.presort == "bm25"
    assert DynamicReranker.from_pretrained(ckpt, max_k=5).policy.max_k == 5
    ex = hotpot_val[0]
    sel = rr.rerank(ex["question"], ex["passages"])
    assert sel.k == len(sel.indices)
    assert len(set(sel.indices)) == sel.k


def test_checkpoint_in_both_adapters(pipeline_run: Path, hotpot_val: list[Any]) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from langchain_dynrag import DynamicRAGRerank as LCRerank
    from llama_index_dynrag import DynamicRAGRerank as LIRerank

    ckpt = str(pipeline_run / "run" / "dpo" / "checkpoint")
    ex = hotpot_val[1]
    nodes = [NodeWithScore(node=TextNode(text=p["text"]), score=0.5) for p in ex["passages"]]
    out = LIRerank(model=ckpt, min_k=1).postprocess_nodes(nodes, QueryBundle(ex["question"]))
    assert 1 <= len(out) <= len(nodes)
    docs = [Document(page_content=p["text"]) for p in ex["passages"]]
    kept = LCRerank(model=ckpt, min_k=1).compress_documents(docs, ex["question"])
    assert 1 <= len(kept) <= len(docs)


def test_second_run_skips_completed_stages(pipeline_run: Path, caplog: Any) -> None:
    manifest = json.loads((pipeline_run / "run" / "manifest.json").read_text())
    caplog.set_level("INFO")
    assert main(["run", "--config", str(pipeline_run / "cfg.yaml")]) == 0
    after = json.loads((pipeline_run / "run" / "manifest.json").read_text())
    for stage in ("bc", "sample", "reward", "pairs", "dpo"):
        assert f"{stage}: complete, skipped" in caplog.text
        assert after["stages"][stage]["finished"] == manifest["stages"][stage]["finished"]


def test_changed_settings_refuse_to_reuse_a_stage(pipeline_run: Path, caplog: Any) -> None:
    cfg = load_config(pipeline_run / "cfg.yaml")
    data = cfg.model_dump(mode="json")
    data["bc"]["learning_rate"] = 0.5
    changed = pipeline_run / "changed.yaml"
    import yaml

    changed.write_text(yaml.safe_dump(data))
    assert main(["bc", "--config", str(changed)]) == 2
    assert "already completed" in caplog.text
    assert "--force" in caplog.text
    # reading other questions of the same files is another setting too
    other = cfg.model_dump(mode="json")
    other["data"]["limit"] = (cfg.data.limit or 100) - 1
    changed.write_text(yaml.safe_dump(other))
    caplog.clear()
    assert main(["bc", "--config", str(changed)]) == 2
    assert "already completed" in caplog.text
