"""Every config in ``configs/`` (the shipped models' recipes) and ``research/configs/`` (past
recipes) is valid and names data that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynrag.training.pipeline import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    [*(ROOT / "configs").glob("*.yaml"), *(ROOT / "research" / "configs").glob("*.yaml")]
)


def test_there_are_configs() -> None:
    assert any(p.name == "smollm2-135m.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_its_files_exist(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # config paths are relative to the repository root
    cfg = load_config(path)
    missing = [str(p) for p in [*cfg.data.train, *cfg.data.exclude] if not p.is_file()]
    assert cfg.data.train
    assert not missing, f"{path.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("enabled", [False, True])
def test_gradient_checkpointing_setting_reaches_every_trl_config(
    enabled: bool, tmp_path: Path
) -> None:
    """TRL's configs default gradient checkpointing to True; ours (False by default) must win."""
    from trl import DPOConfig, GRPOConfig, SFTConfig

    from dynrag.training.pipeline import TrainConfig
    from dynrag.training.stages.trl_support import trl_config

    stage = {"gradient_checkpointing": enabled}
    cfg = TrainConfig(device="cpu", bc=stage, dpo=stage, grpo=stage)
    grpo = {"num_generations": 2, "per_device_train_batch_size": 2}  # TRL checks divisibility
    for settings, trl_class, extra in (
        (cfg.bc, SFTConfig, {}),
        (cfg.dpo, DPOConfig, {}),
        (cfg.grpo, GRPOConfig, grpo),
    ):
        args = trl_config(settings, cfg, tmp_path, **extra)
        assert type(args) is trl_class
        assert args.gradient_checkpointing is enabled


def test_the_scorers_pair_length_is_the_models() -> None:
    # scorer.max_length was silently overwritten by model.max_length; a different value is refused
    from dynrag.training.stages.encoder_bc import EncoderBCConfig

    section = {"model": {"max_length": 128}}
    assert EncoderBCConfig.model_validate(section).model.max_length == 128
    assert EncoderBCConfig.model_validate({**section, "scorer": {"max_length": 128}})
    with pytest.raises(ValueError, match=r"scorer.max_length \(64\) is not read"):
        EncoderBCConfig.model_validate({**section, "scorer": {"max_length": 64}})
