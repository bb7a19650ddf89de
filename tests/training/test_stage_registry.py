"""The stage registry: one definition plus one registry call makes a stage everywhere.

Also the TRL passthrough (``trainer:``), the warm-up fix and a fast ``dynrag-train --help``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dynrag.training.pipeline import TrainConfig, load_config, run_named_stage, run_pipeline
from dynrag.training.rundir import RunDir, StageConflictError
from dynrag.training.stages import (
    STAGES,
    StageContext,
    StageSpec,
    register_stage,
    unregister_stage,
)


# -- a toy stage, as a module would define it ---------------------------------------------------
class ToyConfig(BaseModel):
    """The ``toy:`` section."""

    model_config = ConfigDict(extra="forbid")
    word: str = "hello"
    repeat: int = 2


CALLS: list[str] = []


def _run_toy(ctx: StageContext) -> dict[str, Any]:
    settings: ToyConfig = ctx.settings
    CALLS.append(settings.word)
    source = ctx.upstream("seed/words.txt").read_text()
    ctx.checkpoint.mkdir(parents=True, exist_ok=True)
    (ctx.checkpoint / "model.txt").write_text(
        f"{ctx.start}:{source}:{settings.word * settings.repeat}"
    )
    return {"checkpoint": str(ctx.checkpoint), "words": settings.repeat}


TOY = StageSpec(
    name="toy",
    help="a toy stage that writes a word",
    run=_run_toy,
    settings=ToyConfig,
    reads=("seed/words.txt",),
    start=lambda rd: rd.config.model,
    trains=True,
)


@pytest.fixture
def toy_stage() -> Iterator[StageSpec]:
    CALLS.clear()
    register_stage(TOY)  # the one registry line
    yield TOY
    unregister_stage("toy")


def _toy_config(tmp_path: Path, **toy: Any) -> Path:
    (tmp_path / "run" / "seed").mkdir(parents=True, exist_ok=True)
    (tmp_path / "run" / "seed" / "words.txt").write_text("abc")
    raw = {"model": "base", "run_dir": str(tmp_path / "run"), "stages": ["toy"], "toy": toy}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_registered_stage_is_a_cli_subcommand(toy_stage: StageSpec, capsys: Any) -> None:
    from dynrag.training.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "toy" in out
    assert "a toy stage that writes a word" in out
    assert parser.parse_args(["toy", "--config", "c.yaml"]).command == "toy"
    assert "toy" in STAGES


def test_a_registered_stage_runs_by_name(toy_stage: StageSpec, tmp_path: Path) -> None:
    rd = RunDir(load_config(_toy_config(tmp_path)))
    ckpt = tmp_path / "run" / "toy" / "checkpoint"
    assert run_named_stage("toy", rd) == ckpt
    assert (ckpt / "model.txt").read_text() == "base:abc:hellohello"
    assert CALLS == ["hello"]
    assert run_named_stage("toy", rd) == ckpt  # complete: skipped
    assert CALLS == ["hello"]
    assert run_named_stage("toy", rd, force=True) == ckpt
    assert CALLS == ["hello", "hello"]
    with pytest.raises(KeyError, match="unknown stage 'nope'; stages are bc, sample"):
        run_named_stage("nope", rd)


def test_the_config_accepts_a_registered_stage_and_validates_its_section(
    toy_stage: StageSpec, tmp_path: Path
) -> None:
    cfg = load_config(_toy_config(tmp_path, word="hi"))
    assert cfg.stages == ["toy"]
    assert cfg.section("toy", ToyConfig).word == "hi"
    assert cfg.model_dump()["toy"] == {"word": "hi", "repeat": 2}
    assert TrainConfig().section("toy", ToyConfig).repeat == 2  # absent: the defaults
    with pytest.raises(ValidationError, match=r"toy\.wrod"):
        load_config(_toy_config(tmp_path, wrod="hi"))


def test_unregistered_stages_and_sections_are_errors(tmp_path: Path) -> None:
    assert "toy" not in STAGES
    with pytest.raises(ValidationError, match="unknown stage"):
        TrainConfig(stages=["toy"])
    with pytest.raises(ValidationError, match="unknown key"):
        TrainConfig.model_validate({"toy": {"word": "x"}})


def test_a_registered_stage_runs_through_the_pipeline_and_is_skipped_when_complete(
    toy_stage: StageSpec, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level("INFO")
    cfg = load_config(_toy_config(tmp_path))
    final = run_pipeline(cfg)
    ckpt = tmp_path / "run" / "toy" / "checkpoint"
    assert final == ckpt  # a training stage's checkpoint is the run's model
    assert (ckpt / "model.txt").read_text() == "base:abc:hellohello"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    entry = manifest["stages"]["toy"]
    assert entry["status"] == "complete"
    assert entry["outputs"] == {"checkpoint": str(ckpt), "words": 2}
    assert entry["inputs"]["start"] == "base"
    assert len(entry["inputs"][str(tmp_path / "run" / "seed" / "words.txt")]) == 64
    assert manifest["config"]["toy"] == {"word": "hello", "repeat": 2}
    # the second run skips it
    assert run_pipeline(cfg) == ckpt
    assert CALLS == ["hello"]
    assert "toy: complete, skipped" in caplog.text
    assert RunDir(cfg).latest_model() == str(ckpt)
    # a complete stage whose checkpoint was deleted is named, not replaced by the base model
    moved = ckpt.rename(ckpt.with_name("moved"))
    with pytest.raises(
        FileNotFoundError, match=r"toy stage is recorded complete but its checkpoint"
    ):
        RunDir(cfg).latest_model()
    moved.rename(ckpt)
    # its section is hashed: other settings are refused, --force runs it again
    other = load_config(_toy_config(tmp_path, word="bye"))
    with pytest.raises(StageConflictError):
        run_pipeline(other)
    run_pipeline(other, force=True)
    assert CALLS == ["hello", "bye"]
    # and so is what it reads
    (tmp_path / "run" / "seed" / "words.txt").write_text("changed")
    with pytest.raises(StageConflictError):
        run_pipeline(other)


def test_a_missing_upstream_file_names_the_stage_to_run(
    toy_stage: StageSpec, tmp_path: Path
) -> None:
    cfg = load_config(_toy_config(tmp_path))
    (tmp_path / "run" / "seed" / "words.txt").unlink()
    with pytest.raises(FileNotFoundError, match="run the seed stage first"):
        run_pipeline(cfg)
    assert CALLS == []


def test_registry_rejects_taken_names_and_keys(toy_stage: StageSpec) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_stage(TOY)
    with pytest.raises(ValueError, match="already registered"):
        register_stage(StageSpec(name="run", help="x", run=_run_toy))
    with pytest.raises(ValueError, match="shared field"):
        register_stage(
            StageSpec(name="x", help="x", run=_run_toy, settings=ToyConfig, config_key="data")
        )
    with pytest.raises(ValueError, match="'toy''s"):
        register_stage(
            StageSpec(name="y", help="x", run=_run_toy, settings=BaseModel, config_key="toy")
        )
    assert "x" not in STAGES
    assert "y" not in STAGES


def test_builtin_stages_in_pipeline_order() -> None:
    from dynrag.training.stages import config_sections, training_stages

    assert list(STAGES)[:7] == ["bc", "sample", "reward", "pairs", "dpo", "grpo", "feedback"]
    assert training_stages()[:4] == ["bc", "dpo", "grpo", "feedback"]
    assert list(config_sections())[:7] == list(STAGES)[:7]
    assert STAGES["grpo"].hashed_sections() == ("grpo", "reward")


# -- TRL arguments -----------------------------------------------------------------------------
def test_trainer_section_passes_any_trl_field(tmp_path: Path) -> None:
    from trl import DPOConfig, SFTConfig

    from dynrag.training.stages.trl_support import trl_config

    cfg = TrainConfig(
        device="cpu",
        bc={"trainer": {"weight_decay": 0.1, "max_grad_norm": 0.5}},
        dpo={"trainer": {"label_smoothing": 0.2}},
    )
    sft = trl_config(cfg.bc, cfg, tmp_path, max_length=64)
    assert isinstance(sft, SFTConfig)
    assert sft.weight_decay == 0.1
    assert sft.max_grad_norm == 0.5
    assert sft.max_length == 64
    assert sft.learning_rate == cfg.bc.learning_rate  # the shorthands still apply
    dpo = trl_config(cfg.dpo, cfg, tmp_path)
    assert isinstance(dpo, DPOConfig)
    assert dpo.label_smoothing == 0.2


def test_unknown_trainer_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(
        ValidationError, match=r"trl\.SFTConfig: weight_decy \(did you mean weight_decay\?\)"
    ):
        TrainConfig(bc={"trainer": {"weight_decy": 0.1}})
    with pytest.raises(ValidationError, match=r"bc\.trainer"):
        TrainConfig(bc={"trainer": {"weight_decy": 0.1}})
    # a DPO field is not an SFT field
    with pytest.raises(ValidationError, match="label_smoothing"):
        TrainConfig(bc={"trainer": {"label_smoothing": 0.1}})


def test_a_trl_field_set_twice_is_an_error(tmp_path: Path) -> None:
    from dynrag.training.stages.trl_support import trl_config

    with pytest.raises(ValidationError, match=r"learning_rate / trainer\.learning_rate"):
        TrainConfig(bc={"learning_rate": 1e-3, "trainer": {"learning_rate": 1e-4}})
    cfg = TrainConfig(device="cpu", bc={"trainer": {"learning_rate": 1e-4, "max_length": 8}})
    with pytest.raises(ValueError, match="max_length set by the stage"):
        trl_config(cfg.bc, cfg, tmp_path, max_length=64)
    cfg = TrainConfig(device="cpu", bc={"trainer": {"learning_rate": 1e-4}})
    assert trl_config(cfg.bc, cfg, tmp_path).learning_rate == 1e-4


def test_extra_is_a_deprecated_name_of_trainer() -> None:
    with pytest.warns(FutureWarning, match="'extra'.*deprecated"):
        cfg = TrainConfig(dpo={"extra": {"label_smoothing": 0.1}})
    assert cfg.dpo.trainer == {"label_smoothing": 0.1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TrainConfig(dpo={"trainer": {"label_smoothing": 0.1}})


def test_warmup_ratio_is_a_share_of_the_steps(tmp_path: Path) -> None:
    """It was passed as ``warmup_steps`` (a fraction of one step under transformers 4)."""
    from dynrag.training.stages.trl_support import trl_config

    cfg = TrainConfig(device="cpu", bc={"warmup_ratio": 0.1})
    args = trl_config(cfg.bc, cfg, tmp_path)
    assert args.get_warmup_steps(200) == 20
    assert trl_config(TrainConfig(device="cpu").bc, cfg, tmp_path).get_warmup_steps(200) == 0


def test_help_is_fast_and_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "from dynrag.training.cli import build_parser\n"
        "try:\n"
        "    build_parser().parse_args(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "bad = [m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "grpo" in done.stdout
