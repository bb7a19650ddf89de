"""The stage skeleton: what every stage does the same way, written once.

A stage is a `StageSpec` (its name, help, settings section, what it reads and its ``run``
function). `run_stage` wraps every stage's ``run`` in the same steps:

1. the inputs: sha256 of the upstream files it reads (``reads``), of the training data
   (``reads_data``), of files its settings name (``input_files``), and the model it starts
   from (``start``);
2. skip-if-complete: a stage that completed with the same settings and inputs is skipped; with
   other ones it is refused (`StageConflictError`); ``force`` starts it over;
3. recording: ``manifest.json`` marks it running (a second start after a kill is a resume),
   then complete with the outputs ``run`` returned;
4. processes: under ``accelerate launch`` only the main process records, and a
   ``main_process_only`` stage runs on the main process while the others wait.

Resuming inside a stage uses the helpers here: `done_ids` and `append_jsonl` for stages that
write one JSONL record per question, `train_resuming` for stages that train with a
``transformers.Trainer`` (TRL's or any other). Nothing here assumes TRL or a causal LM.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dynrag.data.jsonl import read_jsonl
from dynrag.training.rundir import RunDir, is_main_process, last_complete_checkpoint

__all__ = [
    "StageContext",
    "StageSpec",
    "done_ids",
    "latest_model_before",
    "run_stage",
    "stage_inputs",
    "train_resuming",
    "wait_for_everyone",
    "write_json",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageSpec:
    """One stage of `dynrag-train`, as the registry holds it.

    Attributes:
        name: the subcommand and the stage's folder in the run directory.
        help: one line, for ``dynrag-train --help``.
        run: does the work; returns the outputs recorded in the manifest.
        settings: the pydantic class of its config section (None: it has none).
        config_key: the YAML section holding those settings (default: ``name``).
        reads: upstream files it reads, as ``"<stage>/<file>"`` (hashed; a missing one is an
            error that names the stage to run first).
        reads_data: it reads the training questions (``data.train`` and ``data.exclude`` are
            hashed).
        reads_config: other config sections its result depends on (hashed with its own).
        input_files: more input files named by its settings (hashed); may raise ValueError.
        start: the model it starts from (hashed as ``"start"``; `StageContext.start`).
        trains: it writes a model to ``<name>/checkpoint``, which later stages and the
            pipeline's result start from (`RunDir.latest_model`).
        output: what running it returns: this path inside its folder.
        main_process_only: under ``accelerate launch`` only the main process runs it.
    """

    name: str
    help: str
    run: Callable[[StageContext], dict[str, Any]]
    settings: type[BaseModel] | None = None
    config_key: str | None = None
    reads: tuple[str, ...] = ()
    reads_data: bool = False
    reads_config: tuple[str, ...] = ()
    input_files: Callable[[Any], Sequence[Path]] | None = None
    start: Callable[[RunDir], str] | None = None
    trains: bool = False
    output: str = "checkpoint"
    main_process_only: bool = False

    def __post_init__(self) -> None:
        if self.config_key is None and self.settings is not None:
            object.__setattr__(self, "config_key", self.name)
        bad = [r for r in self.reads if r.count("/") != 1]
        if bad:
            msg = f"stage {self.name!r}: reads must be '<stage>/<file>', not {bad}"
            raise ValueError(msg)

    def hashed_sections(self) -> tuple[str, ...]:
        """The config sections its settings hash covers: its own, then ``reads_config``."""
        own = (self.config_key,) if self.config_key else ()
        return own + tuple(k for k in self.reads_config if k not in own)


@dataclass
class StageContext:
    """What a stage's ``run`` gets: the run directory, its settings, inputs and start model."""

    spec: StageSpec
    rd: RunDir
    inputs: dict[str, str]
    start: str | None
    force: bool = False

    @property
    def config(self) -> Any:
        """The whole `TrainConfig`."""
        return self.rd.config

    @property
    def settings(self) -> Any:
        """The stage's own config section (an instance of ``spec.settings``)."""
        if self.spec.config_key is None:
            msg = f"stage {self.spec.name!r} declares no settings"
            raise ValueError(msg)
        return self.rd.config.section(self.spec.config_key)

    @property
    def dir(self) -> Path:
        """The stage's folder in the run directory (created)."""
        return self.rd.stage_dir(self.spec.name)

    @property
    def checkpoint(self) -> Path:
        """Where a training stage writes its model (``<stage>/checkpoint``)."""
        return self.rd.checkpoint(self.spec.name)

    def upstream(self, ref: str) -> Path:
        """The path of one of ``spec.reads`` (``"<stage>/<file>"``)."""
        stage, name = ref.split("/")
        return self.rd.path / stage / name


def latest_model_before(stage: str) -> Callable[[RunDir], str]:
    """A ``start`` that trains on from the run's newest model of the stages before ``stage``."""

    def start(rd: RunDir) -> str:
        return rd.latest_model(before=stage)

    return start


def stage_inputs(spec: StageSpec, rd: RunDir, start: str | None) -> dict[str, str]:
    """What a stage's result depends on besides its settings: ``{path: sha256, "start": model}``.

    Raises:
        FileNotFoundError: an upstream file is missing.
    """
    files: list[Path] = []
    for ref in spec.reads:
        stage, name = ref.split("/")
        path = rd.path / stage / name
        if not path.is_file():
            msg = f"no {name} at {path}; run the {stage} stage first"
            raise FileNotFoundError(msg)
        files.append(path)
    if spec.reads_data:
        files += [*rd.config.data.train, *rd.config.data.exclude]
    if spec.input_files is not None:
        settings = rd.config.section(spec.config_key) if spec.config_key else None
        files += list(spec.input_files(settings))
    inputs = rd.input_hashes(files)
    if start is not None:
        inputs["start"] = start
    return inputs


def run_stage(spec: StageSpec, rd: RunDir, *, force: bool = False) -> Path:
    """Run one stage through the skeleton (see the module docstring); returns its output path.

    Raises:
        StageConflictError: it completed with other settings or inputs (and not ``force``).
        FileNotFoundError: an upstream file is missing.
    """
    start = spec.start(rd) if spec.start is not None else None
    inputs = stage_inputs(spec, rd, start)
    output = rd.path / spec.name / spec.output
    if rd.is_complete(spec.name, inputs, force=force):
        logger.info("%s: complete, skipped", spec.name)
        return output
    if spec.main_process_only and not is_main_process():
        wait_for_everyone()
        return output
    if is_main_process():
        rd.start(spec.name, inputs)
    outputs = spec.run(StageContext(spec, rd, inputs, start, force))
    if is_main_process():
        rd.complete(spec.name, outputs)
    wait_for_everyone()
    return output


# -- helpers for stages ------------------------------------------------------------------------
def wait_for_everyone() -> None:
    """A barrier for every process under ``accelerate launch`` (a no-op otherwise)."""
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def done_ids(path: Path) -> set[str]:
    """The ``id`` of every record already written to a JSONL file (resuming a stage).

    Raises:
        ValueError: a record without an ``id`` (the file and record are named).
    """
    if not path.is_file():
        return set()
    ids = set()
    for number, record in enumerate(read_jsonl(path), start=1):
        if not isinstance(record, dict) or "id" not in record:
            msg = f"{path}: record {number} has no 'id'; remove it to recompute it"
            raise ValueError(msg)
        ids.add(str(record["id"]))
    return ids


def train_resuming(trainer: Any, output_dir: Path) -> None:
    """Train a ``transformers.Trainer``, resuming from the newest complete checkpoint if any."""
    last = last_complete_checkpoint(output_dir)
    if last:
        logger.info("resuming training from %s", last)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
