"""Loading the model to train, and saving checkpoints `GenerativeReranker.from_pretrained` reads.

The model being trained is a causal LM checkpoint (LoRA adapter or full weights); torch and
transformers are imported when a function needs them.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynrag.core.loading import ModelConfig, resolve_model
from dynrag.training.causal_lm.trainer_settings import LoraSettings, TrainerSettings
from dynrag.training.config import SharedConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = [
    "base_of",
    "choose_backend",
    "is_adapter",
    "load_tokenizer",
    "load_trainable_model",
    "lora_config",
    "merge_checkpoint",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)


def is_adapter(name_or_path: str) -> bool:
    """Whether a model folder holds a LoRA adapter rather than full weights."""
    resolved = resolve_model(name_or_path)
    return resolved.config.adapter or (resolved.path / "adapter_config.json").is_file()


def base_of(name_or_path: str) -> str:
    """The full-weights model under ``name_or_path`` (itself when it is not an adapter)."""
    if not is_adapter(name_or_path):
        return name_or_path
    base = resolve_model(name_or_path).config.base_model
    if not base:
        msg = f"{name_or_path} holds an adapter but its dynrag_config.json names no base_model"
        raise ValueError(msg)
    return base


def load_tokenizer(name_or_path: str) -> Any:
    """The tokenizer of a model, an adapter's base, or a bundled name (padding on the right)."""
    from transformers import AutoTokenizer

    folder = resolve_model(name_or_path).path
    if not (folder / "tokenizer_config.json").is_file():
        folder = resolve_model(base_of(name_or_path)).path
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


_LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The linear layers of Llama-style blocks ('all-linear' with ``top_layers``)."""


def lora_config(settings: LoraSettings, num_layers: int | None = None) -> Any:
    """A PEFT ``LoraConfig`` for a causal LM with ``num_layers`` transformer layers."""
    from peft import LoraConfig

    layers = None
    targets: list[str] | str = settings.target_modules
    if settings.top_layers is not None:
        if num_layers is None:
            msg = "lora.top_layers needs the model's number of layers"
            raise ValueError(msg)
        layers = list(range(max(num_layers - settings.top_layers, 0), num_layers))
        if isinstance(targets, str):  # PEFT needs names with layers_to_transform
            targets = list(_LINEAR_NAMES)
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )


def load_trainable_model(
    name_or_path: str, config: SharedConfig, settings: TrainerSettings
) -> tuple[PreTrainedModel, Any]:
    """The model a training stage starts from, and the PEFT config to hand to the TRL trainer.

    - From full weights with LoRA (the default): the base model, and a new ``LoraConfig``.
    - From a dynrag LoRA checkpoint: its base with that adapter trainable, and None (the same
      adapter keeps training, so the result is again one adapter over the same base).
    - ``full_finetune``: full weights (an adapter is merged first), and None.
    """
    from transformers import AutoModelForCausalLM

    from dynrag.core.generative.backends.transformers import resolve_device, resolve_dtype

    device = resolve_device(config.device)
    dtype = resolve_dtype(None, device)
    base_name = base_of(name_or_path)
    base_path = resolve_model(base_name).path
    model: Any = AutoModelForCausalLM.from_pretrained(
        base_path, dtype=dtype, trust_remote_code=False
    )
    peft_config = None
    if is_adapter(name_or_path):
        from peft import PeftModel

        folder = resolve_model(name_or_path).path
        if settings.full_finetune:
            model = PeftModel.from_pretrained(model, folder).merge_and_unload()
        else:
            model = PeftModel.from_pretrained(model, folder, is_trainable=True)
    elif not settings.full_finetune:
        num_layers = getattr(model.config.get_text_config(), "num_hidden_layers", None)
        peft_config = lora_config(settings.lora, num_layers)
    if settings.gradient_checkpointing:
        model.config.use_cache = False
    logger.info(
        "model to train from %s (%s)",
        name_or_path,
        "full fine-tuning" if settings.full_finetune else "LoRA",
    )
    return model, peft_config


def save_checkpoint(
    trainer: Any,
    tokenizer: Any,
    folder: Path,
    config: SharedConfig,
    start: str,
    max_k: int | None = None,
) -> Path:
    """Save a trainer's model (adapter or full weights) with its ``dynrag_config.json``.

    Call it on every process: ``trainer.save_model`` gathers sharded weights (DeepSpeed ZeRO-3,
    FSDP). ``GenerativeReranker.from_pretrained(folder)`` then loads it with nothing else.
    """
    folder = Path(folder)
    trainer.save_model(str(folder))
    if not trainer.is_world_process_zero():
        return folder
    adapter = (folder / "adapter_config.json").is_file()
    for name in getattr(trainer.model, "peft_config", {}):
        if name != "default" and (folder / name).is_dir():  # e.g. DPO's frozen "ref" copy
            shutil.rmtree(folder / name)
    tokenizer.save_pretrained(folder)
    base = base_of(start)
    if Path(base).is_dir():
        base = str(Path(base).resolve())
    ModelConfig(
        prompt_format=config.prompt_format,
        base_model=base if adapter else None,
        adapter=adapter,
        window_size=config.max_candidates,
        max_passage_tokens=config.max_passage_tokens,
        max_k=max_k,
        presort=config.presort,
    ).write(folder)
    logger.info("saved %s checkpoint to %s", "adapter" if adapter else "full", folder)
    return folder


def choose_backend(setting: str) -> str:
    """``auto`` -> ``vllm`` when vllm is installed and a GPU is visible, else ``transformers``."""
    if setting != "auto":
        return setting
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available():
        return "vllm"
    return "transformers"


def merge_checkpoint(src: str | Path, dest: str | Path) -> Path:
    """Write an adapter checkpoint's merged full weights (for vLLM, or to ship one folder).

    A folder of full weights is returned unchanged.
    """
    src, dest = str(src), Path(dest)
    if not is_adapter(src):
        return resolve_model(src).path
    if (dest / "config.json").is_file():
        return dest
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(src)
    base = AutoModelForCausalLM.from_pretrained(
        resolve_model(base_of(src)).path, trust_remote_code=False
    )
    merged = PeftModel.from_pretrained(base, resolved.path).merge_and_unload()
    dest.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(dest)
    load_tokenizer(src).save_pretrained(dest)
    resolved.config.model_copy(update={"adapter": False, "base_model": None}).write(dest)
    logger.info("merged %s into %s", src, dest)
    return dest
