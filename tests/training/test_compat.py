"""What keeps older run directories and configs valid, all in `dynrag.training.compat`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynrag.core.encoder.settings import FIELDS_NEW_AT_DEFAULT, EncoderSettings
from dynrag.training.compat import (
    hashed_section,
    kept_option_prefixes,
    older_input_records,
    sampling_model,
)
from dynrag.training.pipeline import TrainConfig
from dynrag.training.rundir import RunDir, StageConflictError
from dynrag.training.stages.encoder_bc import EncoderBCConfig
from dynrag.training.stages.registry import get_stage


def test_encoder_bc_omits_the_core_new_at_default_fields_in_the_order_they_appeared() -> None:
    added = EncoderBCConfig.HASH_OMITS_DEFAULTS
    model = {k.removeprefix("model."): v for k, v in added.items() if k.startswith("model.")}
    assert set(model) == FIELDS_NEW_AT_DEFAULT  # kept in step with core by construction
    assert all(v == EncoderSettings.model_fields[k].default for k, v in model.items())
    # the order is part of older run directories' hashes (kept_option_prefixes)
    assert list(added.items()) == [
        ("cross_fit_folds", 0),
        ("no_gold_fraction", 0.0),
        ("model.similarities", "bi-encoder"),
        ("model.similarity_layer", -1),
        ("scorer.hard_negatives", 0),
        ("scorer.negative_draws", 1),
        ("model.members", 1),
    ]


def test_a_section_is_hashed_as_older_versions_wrote_it() -> None:
    assert hashed_section({"trainer": {"a": 1}, "beta": 0.1}) == {"extra": {"a": 1}, "beta": 0.1}
    assert hashed_section({"trainer": {}, "extra": {}}) == {"trainer": {}, "extra": {}}

    class Added:
        HASH_OMITS_DEFAULTS = {"new": 0, "newer": "x"}

    section = {"old": 1, "new": 0, "newer": "x"}
    assert hashed_section(section, Added) == {"old": 1}
    assert hashed_section(section, Added, keep=["new"]) == {"old": 1, "new": 0}
    assert hashed_section({"old": 1, "new": 5, "newer": "x"}, Added) == {"old": 1, "new": 5}
    assert kept_option_prefixes({"s": Added, "t": None}) == [
        [[], ["s:new"], ["s:new", "s:newer"]],
        [[]],
    ]


def test_inputs_recorded_under_an_older_name_still_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert older_input_records("sample", {"start": "m", "a.json": "h"}) == [
        {"policy": "m", "a.json": "h"}
    ]
    assert older_input_records("bc", {"start": "m"}) == []
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "train.json"
    data.write_text("[]")
    rd = RunDir(TrainConfig(run_dir=tmp_path / "run", data={"train": [data]}))
    inputs = {str(data): "0" * 64, "start": "model"}
    old = {str(data): "0" * 64, "policy": "model"}  # what older versions recorded
    rd.manifest["stages"]["sample"] = {
        "status": "complete",
        "settings": rd.settings_hash("sample", old),
    }
    assert rd.is_complete("sample", inputs)
    rd.manifest["stages"]["sample"]["settings"] = rd.settings_hash("sample", {**old, "x": "y"})
    with pytest.raises(StageConflictError, match="other settings or inputs"):
        rd.is_complete("sample", inputs)


def test_dpo_starts_from_the_model_that_sampled_even_in_older_runs(tmp_path: Path) -> None:
    assert sampling_model({"model": "a", "policy": "b"}) == "a"
    assert sampling_model({"policy": "b"}) == "b"  # older run directories
    assert sampling_model({}) is None
    rd = RunDir(TrainConfig(run_dir=tmp_path / "run", model="base"))
    start = get_stage("dpo").start
    assert start is not None
    assert start(rd) == "base"  # nothing sampled yet: the newest model
    rd.manifest["stages"]["sample"] = {"status": "complete", "outputs": {"policy": "/old/model"}}
    assert start(rd) == "/old/model"
    rd.manifest["stages"]["sample"]["outputs"] = {"model": "/new/model"}
    assert start(rd) == "/new/model"
