from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from dynrag import DynamicReranker
from dynrag.core.loading import DYNRAG_CONFIG_NAME, ModelConfig, resolve_model


def test_hub_id_fails_fast_with_the_alternatives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An endpoint on loopback where nothing listens: as unreachable as the hub is from CI.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(OSError, match="cannot be reached") as info:
        DynamicReranker.from_pretrained("gasolsun/DynamicRAG-8B")
    assert time.perf_counter() - start < 10
    assert "smollm2-135m-instruct" in str(info.value)
    assert "local folder" in str(info.value)


def test_offline_mode_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
        resolve_model("gasolsun/DynamicRAG-7B")


def test_neither_folder_nor_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a model folder"):
        resolve_model(str(tmp_path / "missing" / "deeper" / "still"))
    with pytest.raises(ValueError, match="bundled name"):
        resolve_model("no-such-bundled-model")


def test_local_folder_config_sets_prompt_format_and_window(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "trained"
    folder.mkdir()
    for item in tiny_model_dir.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    ModelConfig(prompt_format="dynamicrag-v1", window_size=7, max_passage_tokens=32).write(folder)
    assert json.loads((folder / DYNRAG_CONFIG_NAME).read_text())["window_size"] == 7
    rr = DynamicReranker.from_pretrained(folder, max_k=2)
    assert rr.window_size == 7
    assert rr.max_passage_tokens == 32
    assert rr.policy.max_k == 2
    assert rr.prompt_format.name == "dynamicrag-v1"


def test_unknown_prompt_format_is_rejected(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown prompt format"):
        DynamicReranker.from_pretrained(tiny_model_dir, prompt_format="nope")


def test_policy_and_policy_fields_together_are_rejected(tiny_model_dir: Path) -> None:
    from dynrag import SelectionPolicy

    with pytest.raises(ValueError, match="either policy"):
        DynamicReranker.from_pretrained(tiny_model_dir, policy=SelectionPolicy(), max_k=2)


def test_bf16_on_cpu(tiny_model_dir: Path, hotpot_val: list[Any]) -> None:
    import torch

    rr = DynamicReranker.from_pretrained(tiny_model_dir, dtype="bfloat16", min_k=1)
    assert next(rr.backend.model.parameters()).dtype == torch.bfloat16  # type: ignore[attr-defined]
    ex = hotpot_val[0]
    sel = rr.rerank(ex["question"], ex["passages"])
    assert 1 <= sel.k <= 10


def test_hub_id_from_the_local_cache_gets_its_release_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path, hotpot_val: list[Any]
) -> None:
    # Lay the tiny model out as the Hugging Face cache holds a downloaded repository.
    revision = "0" * 40
    repo = tmp_path / "hf" / "hub" / "models--gasolsun--DynamicRAG-8B"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for item in tiny_model_dir.iterdir():
        if item.name != "dynrag_config.json":
            (snapshot / item.name).write_bytes(item.read_bytes())
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    resolved = resolve_model("gasolsun/DynamicRAG-8B")
    assert resolved.source == "hub"
    assert resolved.path == snapshot
    assert resolved.config.window_size == 40
    rr = DynamicReranker.from_pretrained("gasolsun/DynamicRAG-8B", min_k=1)
    assert rr.window_size == 40
    ex = hotpot_val[0]
    assert rr.rerank(ex["question"], ex["passages"]).k >= 1


def test_lora_adapter_folder_loads_onto_its_base(
    tiny_model_dir: Path, tmp_path: Path, hotpot_val: list[Any]
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # a non-zero adapter, so that merging changes the weights
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.05)
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    ModelConfig(base_model=str(tiny_model_dir), adapter=True, window_size=12).write(adapter_dir)

    rr = DynamicReranker.from_pretrained(adapter_dir, min_k=1)
    assert rr.window_size == 12
    merged = rr.backend.model  # type: ignore[attr-defined]
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    q_merged = merged.model.layers[0].self_attn.q_proj.weight
    q_plain = plain.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(q_merged, q_plain)
    ex = hotpot_val[0]
    assert rr.rerank(ex["question"], ex["passages"]).k >= 1


def test_adapter_without_base_model_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    ModelConfig(adapter=True).write(folder)
    with pytest.raises(ValueError, match="names no base_model"):
        DynamicReranker.from_pretrained(folder)


def test_loading_an_adapter_is_quiet(
    tiny_model_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Issue 19 item 16: a FutureWarning (is_gradient_checkpointing) and "Loading weights"
    # progress bars on every load.
    import warnings

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    adapter_dir = tmp_path / "adapter"
    get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"])).save_pretrained(adapter_dir)
    ModelConfig(base_model=str(tiny_model_dir), adapter=True).write(adapter_dir)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DynamicReranker.from_pretrained(adapter_dir)
        warnings.warn("still shown", UserWarning, stacklevel=1)
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    assert [str(w.message) for w in caught if w.category is UserWarning] == ["still shown"]
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # restored for the caller's own loads


@pytest.mark.parametrize(
    ("encoder", "field"),
    [
        ({"members": 100_000}, "members"),
        ({"max_items": 100_000_000}, "max_items"),
        ({"d_model": 10**7}, "d_model"),
    ],
)
def test_a_model_folder_cannot_ask_for_unbounded_sizes(
    tmp_path: Path, encoder: dict[str, int], field: str
) -> None:
    # Issue 36 item 8: members: 100000 allocated 6 GB before failing; sizes are checked first
    import time

    from dynrag import Reranker

    folder = Path(shutil.copytree(resolve_model("dynrag-minilm-cut").path, tmp_path / "m"))
    config = json.loads((folder / DYNRAG_CONFIG_NAME).read_text())
    config["encoder"].update(encoder)
    (folder / DYNRAG_CONFIG_NAME).write_text(json.dumps(config))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=field):
        Reranker.from_pretrained(folder)
    assert time.perf_counter() - start < 5


def test_a_truncated_head_is_one_clear_error(tmp_path: Path) -> None:
    from dynrag import Reranker

    folder = Path(shutil.copytree(resolve_model("dynrag-minilm-cut").path, tmp_path / "m"))
    head = folder / "head.safetensors"
    head.write_bytes(head.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"head.safetensors: not this model's head"):
        Reranker.from_pretrained(folder)


def test_an_empty_name_is_refused_not_the_current_folder() -> None:
    with pytest.raises(ValueError, match="model name is empty"):
        resolve_model("")
    with pytest.raises(ValueError, match="model name is empty"):
        DynamicReranker.from_pretrained("  ")
