"""Shared fixtures: real data from ../shared and a tiny random model built in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def hotpot_examples(split: str = "val", limit: int | None = None) -> list[dict[str, Any]]:
    """HotpotQA distractor questions as {question, answer, passages, gold}."""
    path = SHARED_DATA / "hotpotqa" / f"hotpot_dev_distractor_{split}.json"
    data = json.loads(path.read_text(encoding="utf-8"))[:limit]
    out = []
    for ex in data:
        gold_titles = {t for t, _ in ex["supporting_facts"]}
        passages = [{"title": t, "text": "".join(s)} for t, s in ex["context"]]
        out.append(
            {
                "question": ex["question"],
                "answer": ex["answer"],
                "passages": passages,
                "gold": [i for i, p in enumerate(passages) if p["title"] in gold_titles],
            }
        )
    return out


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained in-process on real passages and selection strings."""
    corpus = [p["text"] for ex in hotpot_examples("train", 40) for p in ex["passages"]]
    # Repeated so that BPE learns merges such as "]," and " [", as real tokenizers do.
    corpus += ["[3], [1], [7], [12], [2]"] * 50 + ["None", "Query: Retrieved Content:"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer: Any) -> Path:
    """A tiny random Llama saved as an ordinary model folder."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    model = build_tiny_model(len(tiny_tokenizer))
    model.generation_config.eos_token_id = tiny_tokenizer.eos_token_id
    model.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_reranker(tiny_model_dir: Path) -> Any:
    from dynrag import DynamicReranker

    # batch_size 4 so that rerank_batch really pads and batches on CPU.
    return DynamicReranker.from_pretrained(tiny_model_dir, max_passage_tokens=64, batch_size=4)


@pytest.fixture(scope="session")
def hotpot_val() -> list[dict[str, Any]]:
    return hotpot_examples("val")
