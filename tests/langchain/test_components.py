"""`PhosphoEmbeddings` inside real LangChain components, end to end through the emulator:
vector stores, retrievers in LCEL chains, an embedding router, the embeddings cache, and
Qdrant on disk."""

from __future__ import annotations

import math
from pathlib import Path

from langchain_classic.embeddings import CacheBackedEmbeddings
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.stores import InMemoryByteStore
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_qdrant import QdrantVectorStore

from phospho_embed.emulator import Emulator
from tests.langchain.conftest import MakeEmbeddings

FAQ = [
    "How do I reset my password?",
    "Where is my parcel and when will it be delivered?",
    "I want a refund for a damaged item",
    "How can I change my delivery address?",
    "Cancel my subscription please",
]


def test_in_memory_vector_store_finds_the_right_text(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    store = InMemoryVectorStore.from_texts(FAQ, make_embeddings())
    assert phospho_emulator.stats.requests == len(FAQ)
    [hit] = store.similarity_search("I forgot my password, how to reset it?", k=1)
    assert hit.page_content == FAQ[0]


async def test_async_vector_store_finds_the_right_text(make_embeddings: MakeEmbeddings) -> None:
    store = await InMemoryVectorStore.afrom_texts(FAQ, make_embeddings())
    [hit] = await store.asimilarity_search("refund for a damaged item", k=1)
    assert hit.page_content == FAQ[2]


def test_retriever_in_an_lcel_chain(make_embeddings: MakeEmbeddings) -> None:
    retriever = InMemoryVectorStore.from_texts(FAQ, make_embeddings()).as_retriever(
        search_kwargs={"k": 1}
    )

    def answer(inputs: dict[str, object]) -> str:
        [doc] = inputs["context"]  # type: ignore[misc]
        assert isinstance(doc, Document)
        return f"{inputs['question']} -> {doc.page_content}"

    chain = {"context": retriever, "question": RunnablePassthrough()} | RunnableLambda(answer)
    assert chain.invoke("cancel my subscription") == (
        "cancel my subscription -> Cancel my subscription please"
    )
    assert chain.batch(["change delivery address", "where is my parcel"]) == [
        "change delivery address -> How can I change my delivery address?",
        "where is my parcel -> Where is my parcel and when will it be delivered?",
    ]


async def test_retriever_chain_ainvoke(make_embeddings: MakeEmbeddings) -> None:
    retriever = InMemoryVectorStore.from_texts(FAQ, make_embeddings()).as_retriever(
        search_kwargs={"k": 1}
    )
    chain = retriever | RunnableLambda(lambda docs: docs[0].page_content)
    assert await chain.ainvoke("reset my password") == FAQ[0]


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_an_embedding_router_picks_the_sub_chain(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    embeddings = make_embeddings()
    routes = {
        "billing": "questions about invoices, payments, refunds and charges",
        "shipping": "questions about parcels, delivery, tracking and addresses",
    }
    route_vectors = dict(
        zip(routes, embeddings.embed_documents(list(routes.values())), strict=True)
    )
    chains = {
        "billing": RunnableLambda(lambda q: f"billing team: {q}"),
        "shipping": RunnableLambda(lambda q: f"shipping team: {q}"),
    }

    def route(question: str) -> object:
        query = embeddings.embed_query(question)
        best = max(route_vectors, key=lambda name: _cosine(query, route_vectors[name]))
        return chains[best]

    router = RunnableLambda(route)
    assert router.invoke("I was charged twice on my invoice") == (
        "billing team: I was charged twice on my invoice"
    )
    assert router.invoke("my parcel tracking shows no delivery") == (
        "shipping team: my parcel tracking shows no delivery"
    )
    assert phospho_emulator.stats.requests == 4  # two descriptions once, then one per query


def test_cache_backed_embeddings_send_nothing_the_second_time(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    cached = CacheBackedEmbeddings.from_bytes_store(
        make_embeddings(),
        InMemoryByteStore(),
        namespace="intent-embed",
        key_encoder="sha256",
    )
    first = cached.embed_documents(FAQ)
    assert phospho_emulator.stats.requests == len(FAQ)
    phospho_emulator.reset_stats()
    assert cached.embed_documents(FAQ) == first
    assert phospho_emulator.stats.requests == 0


def test_qdrant_on_disk_survives_a_reopen(make_embeddings: MakeEmbeddings, tmp_path: Path) -> None:
    embeddings = make_embeddings()
    path = str(tmp_path / "qdrant")
    store = QdrantVectorStore.from_texts(
        FAQ, embeddings, path=path, collection_name="faq", metadatas=[{"i": i} for i in range(5)]
    )
    store.client.close()

    reopened = QdrantVectorStore.from_existing_collection(
        embedding=embeddings, collection_name="faq", path=path
    )
    [hit] = reopened.similarity_search("refund for my damaged item", k=1)
    assert hit.page_content == FAQ[2]
    assert hit.metadata["i"] == 2
    reopened.client.close()


def test_vector_store_keeps_order_of_a_large_batch(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    phospho_emulator.configure(latency=0.01, jitter=0.01)
    texts = [f"ticket {i}: customer asks about topic {i}" for i in range(60)]
    store = InMemoryVectorStore.from_texts(texts, make_embeddings(max_concurrency=8))
    for i in (0, 17, 59):
        [hit] = store.similarity_search(texts[i], k=1)
        assert hit.page_content == texts[i]
