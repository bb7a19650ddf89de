from __future__ import annotations

import asyncio
import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document

from langchain_dynrag import DynamicRAGRerank


def to_docs(example: dict[str, Any]) -> list[Document]:
    return [
        Document(
            page_content=p["text"], metadata={"title": p["title"], "tags": ["hotpot"]}, id=str(i)
        )
        for i, p in enumerate(example["passages"])
    ]


@pytest.fixture(scope="module")
def compressor(tiny_reranker: Any) -> DynamicRAGRerank:
    return DynamicRAGRerank(reranker=tiny_reranker, min_k=1, max_k=5)


def test_copies_in_selection_order(
    compressor: DynamicRAGRerank, tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    for ex in hotpot_val[:5]:
        docs = to_docs(ex)
        before = copy.deepcopy(docs)
        out = compressor.compress_documents(docs, ex["question"])
        sel = tiny_reranker.rerank(ex["question"], ex["passages"], policy=compressor.policy)
        assert [d.page_content for d in out] == [ex["passages"][i]["text"] for i in sel.indices]
        for rank, (d, i) in enumerate(zip(out, sel.indices, strict=True), start=1):
            assert d.metadata["title"] == ex["passages"][i]["title"]
            assert d.metadata["relevance_score"] == pytest.approx(1.0 / rank)
            assert d.metadata["dynrag_rank"] == rank
            assert d.metadata["dynrag_k"] == sel.k
            assert d.metadata["dynrag_status"] == sel.status.value
            assert d.metadata["dynrag_stop_probability"] == sel.stop_probability
            assert d.id == str(i)
            assert d.metadata["tags"] is not docs[i].metadata["tags"]  # deep copy
        assert docs == before


def test_k_comes_from_the_model(compressor: DynamicRAGRerank, hotpot_val: list[Any]) -> None:
    ks = {len(compressor.compress_documents(to_docs(ex), ex["question"])) for ex in hotpot_val[:10]}
    assert len(ks) > 1


def test_strict_config_and_guards(tiny_reranker: Any, compressor: DynamicRAGRerank) -> None:
    with pytest.raises(ValueError, match="extra"):
        DynamicRAGRerank(reranker=tiny_reranker, max_K=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="min_k"):
        DynamicRAGRerank(reranker=tiny_reranker, min_k=4, max_k=2)
    assert compressor.compress_documents([], "q") == []
    with pytest.raises(ValueError, match="query is empty"):
        compressor.compress_documents([Document(page_content="x")], " ")


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[Any] = []
        self.ends: list[Any] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.starts.append((kwargs.get("name"), inputs))

    def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        self.ends.append(outputs)


def test_callbacks_are_honoured(compressor: DynamicRAGRerank, hotpot_val: list[Any]) -> None:
    ex = hotpot_val[0]
    rec = Recorder()
    out = compressor.compress_documents(to_docs(ex), ex["question"], callbacks=[rec])
    asyncio.run(compressor.acompress_documents(to_docs(ex), ex["question"], callbacks=[rec]))
    assert [name for name, _ in rec.starts] == ["DynamicRAGRerank", "DynamicRAGRerank"]
    assert rec.starts[0][1]["query"] == ex["question"]
    assert rec.ends[0]["documents"] == out


def test_concurrent_calls_match_sequential(
    compressor: DynamicRAGRerank, hotpot_val: list[Any]
) -> None:
    examples = hotpot_val[:6]

    def run(ex: dict[str, Any]) -> list[str]:
        return [d.page_content for d in compressor.compress_documents(to_docs(ex), ex["question"])]

    expected = [run(ex) for ex in examples]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, examples)) == expected

    async def gather() -> list[list[str]]:
        outs = await asyncio.gather(
            *(compressor.acompress_documents(to_docs(ex), ex["question"]) for ex in examples)
        )
        return [[d.page_content for d in o] for o in outs]

    assert asyncio.run(gather()) == expected


@pytest.mark.slow
def test_retrieval_chain_with_real_models(
    minilm_path: str, smollm2_reranker: Any, qa_examples: list[Any]
) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_huggingface import HuggingFaceEmbeddings
    from local_chat_model import local_chat_model

    store = InMemoryVectorStore(HuggingFaceEmbeddings(model_name=minilm_path))
    store.add_documents(
        [
            Document(page_content=p["text"], metadata={"title": p["title"]})
            for ex in qa_examples
            for p in ex["passages"]
        ]
    )
    base = store.as_retriever(search_kwargs={"k": 10})
    compressor = DynamicRAGRerank(reranker=smollm2_reranker, min_k=1, max_k=3)
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)

    question = qa_examples[0]["question"]
    docs = retriever.invoke(question)
    retrieved = base.invoke(question)
    direct = compressor.compress_documents(retrieved, question)
    assert [d.page_content for d in docs] == [d.page_content for d in direct]
    assert 1 <= len(docs) <= 3
    assert {d.page_content for d in docs} <= {d.page_content for d in retrieved}
    adocs = asyncio.run(retriever.ainvoke(question))
    assert [d.page_content for d in adocs] == [d.page_content for d in docs]

    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer from the context in a short phrase."),
            ("human", "Context:\n{context}\n\nQuestion: {question}"),
        ]
    )
    chain = (
        {
            "context": retriever | (lambda ds: "\n\n".join(d.page_content for d in ds)),
            "question": RunnablePassthrough(),
        }
        | prompt
        | local_chat_model(max_new_tokens=24)
        | StrOutputParser()
    )
    answer = chain.invoke(qa_examples[1]["question"])
    assert isinstance(answer, str)
    assert answer.strip()
    assert "<|im_start|>" not in answer
    aanswer = asyncio.run(chain.ainvoke(qa_examples[1]["question"]))
    assert aanswer == answer


def test_unset_options_inherit_the_rerankers_policy(tiny_reranker: Any) -> None:
    # Issue 19 item 8: DynamicRAGRerank(reranker=rr) had max_k None while rr.policy.max_k was 4.
    from dynrag import GenerativeReranker, SelectionPolicy

    trained = GenerativeReranker(
        tiny_reranker.backend, max_passage_tokens=64, policy=SelectionPolicy(max_k=4, min_k=1)
    )
    inherited = DynamicRAGRerank(reranker=trained)
    assert (inherited.max_k, inherited.min_k) == (4, 1)
    assert inherited.policy == trained.policy
    own = DynamicRAGRerank(reranker=trained, max_k=2)
    assert (own.max_k, own.min_k) == (2, 1)
    with pytest.raises(ValueError, match="min_k"):
        DynamicRAGRerank(reranker=trained, min_k=6)  # above the reranker's max_k, at build time
