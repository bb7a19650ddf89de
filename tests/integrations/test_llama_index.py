from __future__ import annotations

import asyncio
import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from dynrag import SelectionPolicy
from llama_index_dynrag import DynamicRAGRerank


def to_nodes(example: dict[str, Any]) -> list[NodeWithScore]:
    return [
        NodeWithScore(
            node=TextNode(text=p["text"], metadata={"title": p["title"], "source": "hotpot"}),
            score=1.0 - i / 20,
        )
        for i, p in enumerate(example["passages"])
    ]


@pytest.fixture(scope="module")
def rerank(tiny_reranker: Any) -> DynamicRAGRerank:
    return DynamicRAGRerank(reranker=tiny_reranker, min_k=1, max_k=5)


def test_output_is_the_selection_in_order_with_metadata(
    rerank: DynamicRAGRerank, tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    for ex in hotpot_val[:5]:
        nodes = to_nodes(ex)
        before = copy.deepcopy(nodes)
        out = rerank.postprocess_nodes(nodes, query_str=ex["question"])
        sel = tiny_reranker.rerank(ex["question"], ex["passages"], policy=rerank.policy)
        assert [n.node.get_content() for n in out] == [
            ex["passages"][i]["text"] for i in sel.indices
        ]
        for rank, (n, i) in enumerate(zip(out, sel.indices, strict=True), start=1):
            assert n.node.metadata["title"] == ex["passages"][i]["title"]
            assert n.node.metadata["source"] == "hotpot"
            assert n.node.metadata["retrieval_score"] == nodes[i].score
            assert n.node.metadata["dynrag_rank"] == rank
            assert n.node.metadata["dynrag_k"] == sel.k
            assert n.node.metadata["dynrag_status"] == sel.status.value
            assert n.node.metadata["dynrag_stop_probability"] == sel.stop_probability
            assert n.score == pytest.approx(1.0 / rank)
            assert "dynrag_rank" in n.node.excluded_llm_metadata_keys
            assert "dynrag_status" in n.node.excluded_llm_metadata_keys
            assert n is not nodes[i]
            assert n.node is not nodes[i].node
        assert [n.model_dump() for n in nodes] == [n.model_dump() for n in before]


def test_k_comes_from_the_model(rerank: DynamicRAGRerank, hotpot_val: list[Any]) -> None:
    ks = {
        len(rerank.postprocess_nodes(to_nodes(ex), query_str=ex["question"]))
        for ex in hotpot_val[:10]
    }
    assert len(ks) > 1


def test_guards(rerank: DynamicRAGRerank, hotpot_val: list[Any]) -> None:
    with pytest.raises(ValueError, match="needs a query"):
        rerank.postprocess_nodes(to_nodes(hotpot_val[0]))
    with pytest.raises(ValueError, match="needs a query"):
        rerank.postprocess_nodes(to_nodes(hotpot_val[0]), query_str="  ")
    assert rerank.postprocess_nodes([], query_str="anything") == []


class Recorder(BaseEventHandler):
    events: list[Any] = []

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)


def test_events_and_legacy_callback(tiny_reranker: Any, hotpot_val: list[Any]) -> None:
    recorder = Recorder()
    get_dispatcher().add_event_handler(recorder)
    debug = LlamaDebugHandler()
    rerank = DynamicRAGRerank(
        reranker=tiny_reranker, max_k=3, min_k=1, callback_manager=CallbackManager([debug])
    )
    ex = hotpot_val[0]
    out = rerank.postprocess_nodes(to_nodes(ex), query_str=ex["question"])
    asyncio.run(rerank.apostprocess_nodes(to_nodes(ex), query_str=ex["question"]))
    starts = [e for e in recorder.events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in recorder.events if isinstance(e, ReRankEndEvent)]
    assert len(starts) >= 2
    assert starts[-1].top_n == 3
    assert len(ends) >= 2
    assert [n.node.get_content() for n in ends[-2].nodes] == [n.node.get_content() for n in out]
    pairs = debug.get_event_pairs(CBEventType.RERANKING)
    assert len(pairs) == 2


def test_round_trip_without_the_model(rerank: DynamicRAGRerank, tiny_model_dir: Any) -> None:
    data = rerank.to_dict()
    assert data["class_name"] == "DynamicRAGRerank"
    assert data["max_k"] == 5
    assert data["min_k"] == 1
    assert data["model"] == str(tiny_model_dir)
    assert "_reranker" not in data
    assert "reranker" not in data
    clone = DynamicRAGRerank.from_dict(data)
    assert clone.max_k == 5
    assert clone.reranker is not rerank.reranker  # built anew from `model`


def test_concurrent_calls_match_sequential(rerank: DynamicRAGRerank, hotpot_val: list[Any]) -> None:
    examples = hotpot_val[:6]

    def run(ex: dict[str, Any]) -> list[str]:
        return [
            n.node.get_content()
            for n in rerank.postprocess_nodes(to_nodes(ex), query_str=ex["question"])
        ]

    expected = [run(ex) for ex in examples]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, examples)) == expected

    async def gather() -> list[list[str]]:
        outs = await asyncio.gather(
            *(
                rerank.apostprocess_nodes(to_nodes(ex), query_bundle=QueryBundle(ex["question"]))
                for ex in examples
            )
        )
        return [[n.node.get_content() for n in o] for o in outs]

    assert asyncio.run(gather()) == expected


@pytest.mark.slow
def test_query_engine_with_real_models(
    minilm_path: str, smollm2_reranker: Any, qa_examples: list[Any]
) -> None:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from local_llm import LocalLLM

    Settings.embed_model = HuggingFaceEmbedding(model_name=minilm_path)
    llm = LocalLLM(max_new_tokens=24)
    nodes = [
        TextNode(text=p["text"], metadata={"title": p["title"]})
        for ex in qa_examples
        for p in ex["passages"]
    ]
    index = VectorStoreIndex(nodes)
    rerank = DynamicRAGRerank(reranker=smollm2_reranker, min_k=1, max_k=3)
    engine = index.as_query_engine(similarity_top_k=10, node_postprocessors=[rerank], llm=llm)
    retriever = index.as_retriever(similarity_top_k=10)
    for ex, run in ((qa_examples[0], engine.query), (qa_examples[1], None)):
        question = ex["question"]
        response = run(question) if run else asyncio.run(engine.aquery(question))
        retrieved = retriever.retrieve(question)
        sel = smollm2_reranker.rerank(
            question,
            [{"title": n.node.metadata["title"], "text": n.node.get_content()} for n in retrieved],
            policy=SelectionPolicy(min_k=1, max_k=3),
        )
        got = [n.node.get_content() for n in response.source_nodes]
        assert got == [retrieved[i].node.get_content() for i in sel.indices]
        assert 1 <= len(got) <= 3
        assert str(response).strip()


def test_unset_options_inherit_the_rerankers_policy(tiny_reranker: Any) -> None:
    # Issue 19 item 8: DynamicRAGRerank(reranker=rr) had max_k None while rr.policy.max_k was 4.
    from dynrag import GenerativeReranker

    trained = GenerativeReranker(
        tiny_reranker.backend, max_passage_tokens=64, policy=SelectionPolicy(max_k=4, min_k=1)
    )
    inherited = DynamicRAGRerank(reranker=trained)
    assert (inherited.max_k, inherited.min_k) == (4, 1)
    assert inherited.policy == trained.policy
    own = DynamicRAGRerank(reranker=trained, max_k=2)
    assert (own.max_k, own.min_k) == (2, 1)
    with pytest.raises(ValueError, match="min_k"):
        DynamicRAGRerank(reranker=trained, min_k=6)  # above the reranker's max_k


def test_top_n_is_the_cap_and_unknown_options_are_refused(
    tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    # Issue 19 item 9: max_K=3 and top_n were silently ignored; min_k > max_k failed per call.
    capped = DynamicRAGRerank(reranker=tiny_reranker, top_n=2, min_k=2)
    assert capped.max_k == 2
    ex = hotpot_val[0]
    assert len(capped.postprocess_nodes(to_nodes(ex), query_str=ex["question"])) == 2
    with pytest.raises(ValueError, match="max_K"):
        DynamicRAGRerank(reranker=tiny_reranker, max_K=3)
    with pytest.raises(ValueError, match="differ"):
        DynamicRAGRerank(reranker=tiny_reranker, top_n=2, max_k=3)
    with pytest.raises(ValueError, match="min_k"):
        DynamicRAGRerank(reranker=tiny_reranker, min_k=4, max_k=2)
