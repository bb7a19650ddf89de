"""Stage hashes stay stable as settings classes gain options (``HASH_OMITS_DEFAULTS``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dynrag.training.compat import omit_defaults as _omit_defaults
from dynrag.training.pipeline import TrainConfig
from dynrag.training.rundir import RunDir
from dynrag.training.stages.base import stage_inputs
from dynrag.training.stages.encoder_bc import EncoderBCConfig
from dynrag.training.stages.registry import get_stage

ROOT = Path(__file__).resolve().parents[2]

# configs/minilm-cut.yaml as it was when the shipped model's run directory was recorded
# (commit cf5f85c): encoder-bc already had cross_fit_folds and no_gold_fraction, which it
# recorded at their values, but not the options added since (model.similarities...).
RECORDED = """
model: all-minilm-l6-v2
run_dir: RUN
seed: 0
device: cpu
max_candidates: 20
stages: [encoder-bc, encoder-rl]
data:
  train:
    - ../shared/data/hotpotqa/hotpot_train_distractor_subset.json
    - ../shared/data/hotpotqa/hotpot_dev_distractor_train.json
    - ../shared/data/hotpotqa/hotpot_dev_retrieved.jsonl
    - ../shared/data/2wikimultihopqa/2wikimultihopqa_dev_subset.json
    - ../shared/data/musique/musique_ans_v1.0_train_subset.jsonl
  exclude:
    - ../shared/data/hotpotqa/hotpot_dev_distractor_val.json
    - data/hotpotqa-retrieved-eval/hotpot_dev_retrieved_eval50.jsonl
    - data/heldout/heldout_multihop.json
    - data/heldout/2wiki_heldout.json
    - data/heldout/musique_heldout.jsonl
encoder-bc:
  model: {max_length: 128, embed_max_length: 32, max_items: 12}
  scorer: {epochs: 2, learning_rate: 1.0e-3, queries_per_batch: 4, negatives: 4, lora_r: 16,
           lora_alpha: 32, save_steps: 50}
  head: {epochs: 40, learning_rate: 2.0e-3, batch_size: 32, weight_decay: 0.05,
         calibration_fraction: 0.2}
  scorer_fraction: 0.6
  cross_fit_folds: 2
encoder-rl: {max_k: 4, questions: 200, bc_weight: 0.5}
reward:
  generator: smollm2-135m-instruct
  max_passage_tokens: 96
  weights: {em: 0.0, f1: 0.0, gold_likelihood: 0.9, brevity: 0.1}
"""


def test_nested_options_are_omitted_at_their_default_only() -> None:
    section = {"model": {"similarities": "bi-encoder", "max_length": 128}, "folds": 0}
    added = {"model.similarities": "bi-encoder", "folds": 0, "absent.key": 1}
    assert _omit_defaults(section, added) == {"model": {"max_length": 128}}
    assert section["model"]["similarities"] == "bi-encoder"  # the caller's dict is unchanged
    other = {"model": {"similarities": "cross"}, "folds": 2}
    assert _omit_defaults(other, added) == other


def test_a_record_from_a_version_with_fewer_options_is_still_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the config's data paths are relative to the repository root
    raw = yaml.safe_load(RECORDED.replace("RUN", str(tmp_path / "run")))
    rd = RunDir(TrainConfig.model_validate(raw))
    inputs = stage_inputs(get_stage("encoder-bc"), rd, None)
    accepted = rd.settings_hashes("encoder-bc", inputs)
    assert rd.settings_hash("encoder-bc", inputs) in accepted
    # what that version wrote into runs/minilm-cut/manifest.json
    assert "5598b00e926be26d" in accepted
    # the first k later options of encoder-bc recorded, k = 0..7 (k = 0 and 1 hash alike here:
    # cross_fit_folds is not at its default, so it is recorded either way)
    assert len(EncoderBCConfig.HASH_OMITS_DEFAULTS) == 7
    assert len(accepted) == 7
    # a real change of setting is still a different stage
    raw["encoder-bc"]["model"]["similarities"] = "cross"
    changed = RunDir(TrainConfig.model_validate(raw)).settings_hashes("encoder-bc", inputs)
    assert not changed & accepted
