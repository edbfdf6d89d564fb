"""One rule for both framework adapters: configuration is never silently ignored.

A field changed after construction, ``model_copy(update=...)``, ``copy.copy`` and
``copy.deepcopy`` all send with clients built from the fields as they are; a copy has its
own clients; closing leaves the adapter usable; one bound holds across threads and loops.
Every case runs against the emulator, for LangChain's and LlamaIndex's adapter alike.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from langchain_phospho import PhosphoEmbeddings
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import APIConnectionError, AuthenticationError
from phospho_embed.emulator import Emulator, emulator_vector

KEY = "test-key-not-secret"


class Adapter:
    """Drives either adapter through its own framework's method names."""

    def __init__(self, name: str) -> None:
        self.name = name

    def make(self, emulator: Emulator, **fields: Any) -> Any:
        fields = {"api_key": KEY, "base_url": emulator.base_url, **fields}
        return (
            PhosphoEmbeddings(**fields) if self.name == "langchain" else PhosphoEmbedding(**fields)
        )

    def embed(self, model: Any, texts: list[str]) -> list[list[float]]:
        if self.name == "langchain":
            return model.embed_documents(texts)  # type: ignore[no-any-return]
        return model.get_text_embedding_batch(texts)  # type: ignore[no-any-return]

    def embed_one(self, model: Any, text: str) -> list[float]:
        if self.name == "langchain":
            return model.embed_query(text)  # type: ignore[no-any-return]
        return model.get_query_embedding(text)  # type: ignore[no-any-return]

    async def aembed(self, model: Any, texts: list[str]) -> list[list[float]]:
        if self.name == "langchain":
            return await model.aembed_documents(texts)  # type: ignore[no-any-return]
        return await model.aget_text_embedding_batch(texts)  # type: ignore[no-any-return]


@pytest.fixture(params=["langchain", "llama_index"])
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return Adapter(request.param)


@pytest.fixture
def emulator(phospho_emulator: Emulator) -> Emulator:
    phospho_emulator.configure(api_key=KEY)
    return phospho_emulator


def slow_again(emulator: Emulator) -> None:
    """Zero the counters (a reset also restores the emulator's settings: set them again)."""
    emulator.reset()
    emulator.configure(api_key=KEY, latency=0.05)


def vectors(texts: list[str]) -> list[list[float]]:
    return [emulator_vector(t, 1536) for t in texts]


def test_a_field_changed_after_use_takes_effect(adapter: Adapter, emulator: Emulator) -> None:
    model = adapter.make(emulator, max_concurrency=2, max_retries=0)
    emulator.configure(latency=0.05)
    texts = [f"text {i}" for i in range(12)]
    assert adapter.embed(model, texts) == vectors(texts)
    assert emulator.stats.peak_in_flight == 2

    model.max_concurrency = 6
    slow_again(emulator)
    texts = [f"more {i}" for i in range(12)]
    assert adapter.embed(model, texts) == vectors(texts)
    assert emulator.stats.peak_in_flight == 6

    model.api_key = "another key"  # a plain str, as an assignment leaves it
    with pytest.raises(AuthenticationError):
        adapter.embed(model, ["refused"])
    model.base_url = "http://127.0.0.1:9/v2"  # nothing listens there
    with pytest.raises(APIConnectionError, match=r"127\.0\.0\.1:9/"):
        adapter.embed_one(model, "nowhere")


def test_a_bad_value_assigned_later_fails_at_the_next_call(
    adapter: Adapter, emulator: Emulator
) -> None:
    model = adapter.make(emulator)
    model.max_concurrency = 0
    with pytest.raises(ValueError, match="max_concurrency must be >= 1"):
        adapter.embed(model, ["never sent"])
    assert emulator.stats.requests == 0


def test_model_copy_with_changes_uses_its_own_clients(adapter: Adapter, emulator: Emulator) -> None:
    original = adapter.make(emulator, max_concurrency=2)
    assert adapter.embed(original, ["warm up"]) == vectors(["warm up"])
    slow_again(emulator)
    wider = original.model_copy(update={"max_concurrency": 5})
    texts = [f"text {i}" for i in range(10)]
    assert adapter.embed(wider, texts) == vectors(texts)
    assert emulator.stats.peak_in_flight == 5
    assert wider.usage.requests == 10
    # The original keeps its own clients and bound, untouched by the copy.
    slow_again(emulator)
    assert adapter.embed(original, texts[:6]) == vectors(texts[:6])
    assert emulator.stats.peak_in_flight == 2
    assert original.usage.requests == 1 + 6


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy])
def test_a_copy_before_or_after_use_builds_its_own_clients(
    adapter: Adapter, emulator: Emulator, copier: Callable[[Any], Any]
) -> None:
    model = adapter.make(emulator)
    fresh = copier(model)
    assert adapter.embed(model, ["first"]) == vectors(["first"])
    used = copier(model)
    for twin in (fresh, used):
        assert adapter.embed(twin, ["copied"]) == vectors(["copied"])
        assert twin.usage.requests == 1
        assert twin._clients is not model._clients
    assert model.usage.requests == 1


def test_a_deep_copy_shares_an_injected_http_client(emulator: Emulator) -> None:
    with httpx.Client() as http:
        model = PhosphoEmbeddings(api_key=KEY, base_url=emulator.base_url, http_client=http)
        twin = copy.deepcopy(model)
        assert twin.http_client is http
        assert (
            twin.embed_query("through the caller's client")
            == vectors(["through the caller's client"])[0]
        )


async def test_closing_leaves_the_adapter_usable_and_usage_keeps_counting(
    adapter: Adapter, emulator: Emulator
) -> None:
    model = adapter.make(emulator)
    assert await adapter.aembed(model, ["before"]) == vectors(["before"])
    assert adapter.embed(model, ["sync before"]) == vectors(["sync before"])
    await model.aclose()
    model.close()
    assert await adapter.aembed(model, ["after"]) == vectors(["after"])
    assert adapter.embed(model, ["sync after"]) == vectors(["sync after"])
    assert model.usage.requests == 4


def test_one_bound_across_threads_each_running_its_own_loop(
    adapter: Adapter, emulator: Emulator
) -> None:
    model = adapter.make(emulator, max_concurrency=4)
    emulator.configure(latency=0.05)

    def run(name: str) -> bool:
        texts = [f"{name} {i}" for i in range(12)]
        return asyncio.run(adapter.aembed(model, texts)) == vectors(texts)

    with ThreadPoolExecutor(max_workers=3) as threads:
        assert all(threads.map(run, ["north", "south", "east"]))
    assert emulator.stats.peak_in_flight == 4


def test_a_deep_copied_retriever_embeds_with_its_own_clients(emulator: Emulator) -> None:
    # DSPy and graph frameworks deep-copy whole pipelines, embedder included.
    from langchain_core.vectorstores import InMemoryVectorStore

    embeddings = PhosphoEmbeddings(api_key=KEY, base_url=emulator.base_url)
    store = InMemoryVectorStore.from_texts(["refund my order", "where is my parcel"], embeddings)
    retriever = copy.deepcopy(store.as_retriever(search_kwargs={"k": 1}))
    assert retriever.invoke("where is my parcel")[0].page_content == "where is my parcel"
    copied = retriever.vectorstore.embeddings
    assert copied is not embeddings
    assert copied.usage.requests == 1  # the copy's own client sent the query
    assert embeddings.usage.requests == 2  # the original's: the two texts only


def test_usage_counts_the_requests_of_clients_replaced_mid_call(
    adapter: Adapter, emulator: Emulator
) -> None:
    model = adapter.make(emulator, max_concurrency=4)
    emulator.configure(latency=0.05)
    texts = [f"text {i}" for i in range(40)]
    running = threading.Thread(target=adapter.embed, args=(model, texts))
    running.start()
    while emulator.stats.in_flight == 0:
        time.sleep(0.005)
    model.max_concurrency = 8  # a new client; the running call keeps the old one
    assert adapter.embed_one(model, "meanwhile") == vectors(["meanwhile"])[0]
    running.join()
    assert model.usage.requests == emulator.stats.by_status[200] == 41
