"""The run directory: one folder per stage and a manifest that makes runs resumable.

``manifest.json`` records the config, the sha256 of every input file, library versions, the
seed, and each stage's status. A stage that completed with the same settings is skipped; a
stage that was interrupted resumes (trainers from their last checkpoint, sampling and scoring
from the questions already written).

What a stage's settings hash covers comes from its registry entry, which the config answers
(`SharedConfig.stage_spec`, `SharedConfig.training_stages`): this module imports no stage. The
rules that keep older run directories' hashes matching are in `dynrag.training.compat`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from dynrag.training import compat
from dynrag.training.config import SharedConfig

__all__ = [
    "RunDir",
    "StageConflictError",
    "file_sha256",
    "is_main_process",
    "last_complete_checkpoint",
]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_PACKAGES = (
    "dynrag",
    "torch",
    "transformers",
    "tokenizers",
    "sentence-transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "vllm",
)


class StageConflictError(RuntimeError):
    """A stage already completed in this run directory with different settings."""


def is_main_process() -> bool:
    """Whether this is the main process (always, outside ``accelerate launch``)."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    Path(tmp).replace(path)


class RunDir:
    """A run's folder: ``manifest.json`` and one sub-folder per stage."""

    def __init__(self, config: SharedConfig) -> None:
        """Open (or create) the run directory named by ``config.run_dir``."""
        self.config = config
        self.path = Path(config.run_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.path / MANIFEST
        self.manifest = self._load()

    def _load(self) -> dict[str, Any]:
        if self.manifest_path.is_file():
            try:
                data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                msg = (
                    f"{self.manifest_path}: not a run manifest ({err}); restore it, or remove it "
                    "to run every stage again"
                )
                raise ValueError(msg) from None
            if not isinstance(data, dict) or not isinstance(data.setdefault("stages", {}), dict):
                msg = f"{self.manifest_path}: not a run manifest (no 'stages' object)"
                raise ValueError(msg)
            return data
        return {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "stages": {}}

    def reload(self) -> None:
        """Read the manifest again (another process, or a stage, may have written it)."""
        self.manifest = self._load()

    def save(self) -> None:
        """Write the manifest (atomically)."""
        self.manifest["config"] = self.config.model_dump(mode="json")
        self.manifest["versions"] = _versions()
        self.manifest["seed"] = self.config.seed
        _atomic_write(self.manifest_path, json.dumps(self.manifest, indent=2) + "\n")

    def stage_dir(self, stage: str) -> Path:
        """The stage's folder (created)."""
        folder = self.path / stage
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def settings_hash(self, stage: str, inputs: dict[str, str]) -> str:
        """What a stage's result depends on: its config sections, shared settings and inputs.

        The sections are the stage's own and those it declares it reads (the registry's
        `StageSpec.hashed_sections`; GRPO scores with the reward settings).
        """
        return self._hash(stage, inputs, frozenset(), self.config.model_dump(mode="json"))

    def settings_hashes(self, stage: str, inputs: dict[str, str]) -> set[str]:
        """`settings_hash`, and the hashes of the same settings as older versions recorded them.

        Each hashed section is tried with the first k of its later options kept at their
        defaults, k = 0..n (`compat.kept_option_prefixes` says why).
        """
        spec = self.config.stage_spec(stage)
        names = [n for n in dict.fromkeys([spec.config_key, *spec.hashed_sections()]) if n]
        prefixes = compat.kept_option_prefixes({n: self.config.section_class(n) for n in names})
        cfg = self.config.model_dump(mode="json")
        return {
            self._hash(stage, inputs, frozenset(k for part in combo for k in part), cfg)
            for combo in itertools.product(*prefixes)
        }

    def _hash(
        self, stage: str, inputs: dict[str, str], keep: frozenset[str], cfg: dict[str, Any]
    ) -> str:
        """The hash of the dumped ``cfg``; ``keep``: ``section:option``s hashed at default."""
        spec = self.config.stage_spec(stage)
        shared = {k: cfg[k] for k in ("model", "seed", "prompt_format", "max_passage_tokens")}
        shared["max_candidates"] = cfg["max_candidates"]
        for name in compat.SHARED_ADDED_LATER:  # absent before they existed: old hashes hold
            if cfg.get(name) is not None:
                shared[name] = cfg[name]
        data = cfg["data"]
        # Which questions are read (the files themselves are in ``inputs``).
        shared["data"] = {k: data[k] for k in ("limit", "file_limits", "format")}

        def section(name: str) -> dict[str, Any]:
            kept = [k.split(":", 1)[1] for k in keep if k.startswith(f"{name}:")]
            return compat.hashed_section(cfg.get(name, {}), self.config.section_class(name), kept)

        key = spec.config_key
        own = section(key) if key else {}
        settings = {"shared": shared, "stage": own, "inputs": inputs}
        for name in spec.hashed_sections():
            if name != key:
                settings[name] = section(name)
        blob = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def is_complete(self, stage: str, inputs: dict[str, str], *, force: bool = False) -> bool:
        """Whether ``stage`` already completed with these settings.

        The inputs as older versions recorded them (`compat.older_input_records`) count as the
        same.

        Raises:
            StageConflictError: it completed with other settings (and ``force`` is False).
        """
        entry = self.manifest["stages"].get(stage)
        if not entry or entry.get("status") != "complete":
            return False
        if force:  # start over: drop the old outputs, trainer checkpoints included
            folder = self.path / stage
            if folder.is_dir() and is_main_process():
                shutil.rmtree(folder)
            entry["status"] = "forced"
            return False
        accepted: set[str] = set()
        for x in (inputs, *compat.older_input_records(stage, inputs)):
            accepted |= self.settings_hashes(stage, x)
        if entry.get("settings") not in accepted:
            msg = (
                f"stage {stage!r} already completed in {self.path} with other settings or inputs; "
                "use a new run_dir, or pass --force to run it again"
            )
            raise StageConflictError(msg)
        return True

    def start(self, stage: str, inputs: dict[str, str]) -> None:
        """Record that ``stage`` started (or resumed)."""
        entry = self.manifest["stages"].setdefault(stage, {})
        if entry.get("status") == "running":
            logger.info("resuming stage %s", stage)
        entry.update(
            status="running",
            started=entry.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S"),
            settings=self.settings_hash(stage, inputs),
            inputs=inputs,
        )
        self.save()

    def complete(self, stage: str, outputs: dict[str, Any]) -> None:
        """Record that ``stage`` completed, with what it wrote."""
        entry = self.manifest["stages"].setdefault(stage, {})
        entry.update(
            status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S"), outputs=outputs
        )
        self.save()

    def checkpoint(self, stage: str) -> Path:
        """Where a training stage writes its final model."""
        return self.path / stage / "checkpoint"

    def latest_model(self, before: str | None = None) -> str:
        """The newest model this run trained, or the config's starting model.

        Completed training stages (``trains`` in the registry) count in pipeline order;
        ``before``: only those earlier than this training stage.

        Raises:
            FileNotFoundError: a stage recorded complete whose checkpoint is gone (a later stage
                would otherwise start from the base model without a word); the path is named.
        """
        order = self.config.training_stages()
        if before in order:
            order = order[: order.index(before)]
        latest = self.config.model
        for stage in order:
            entry = self.manifest["stages"].get(stage, {})
            if entry.get("status") != "complete":
                continue
            checkpoint = self.checkpoint(stage)
            if not checkpoint.is_dir():
                msg = (
                    f"the {stage} stage is recorded complete but its checkpoint {checkpoint} is "
                    f"missing; restore it, or run `dynrag-train {stage} --force` to retrain it"
                )
                raise FileNotFoundError(msg)
            latest = str(checkpoint)
        return latest

    def input_hashes(self, paths: Iterable[Path]) -> dict[str, str]:
        """``{path: sha256}`` for files (the manifest's record of what a stage read)."""
        return {str(p): file_sha256(Path(p)) for p in paths}


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder in ``output_dir`` that was written to the end.

    A trainer writes ``trainer_state.json`` last, so a folder without it is what a process
    killed while saving leaves behind; such folders are skipped with a warning (resuming from
    one fails), and the checkpoint before them is used.
    """
    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not output_dir.is_dir():
        return None
    steps = {}
    for path in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = path.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        if path.is_dir() and suffix.isdigit():
            steps[int(suffix)] = path
    for step in sorted(steps, reverse=True):
        if (steps[step] / TRAINER_STATE_NAME).is_file():
            return steps[step]
        logger.warning(
            "skipping %s: written only in part (the run stopped while saving it)", steps[step]
        )
    return None
