"""Against the real phospho API: runs only when ``PHOSPHO_API_KEY`` is set (never in CI).

A handful of requests (billed), to check what the emulator cannot: that the real service
still answers as the contract says, and that its vectors carry intent.
"""

from __future__ import annotations

import asyncio
import math
import os

import pytest

from phospho_embed import AsyncPhosphoClient, PhosphoClient

pytestmark = [
    pytest.mark.live,  # keeps the developer's PHOSPHO_* settings (see tests/conftest.py)
    pytest.mark.skipif(
        not os.environ.get("PHOSPHO_API_KEY"), reason="live test: set PHOSPHO_API_KEY to run it"
    ),
]

TEXTS = [
    "I want to cancel my order",
    "please cancel the order I just placed",
    "what will the weather be like tomorrow?",
]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_the_real_api_embeds_in_order_and_by_intent() -> None:
    with PhosphoClient() as client:
        vectors = client.embed_many(TEXTS)
        usage = client.usage
    assert len({len(vector) for vector in vectors}) == 1
    assert usage.requests == len(TEXTS)
    # Two ways of asking to cancel are closer to each other than to small talk.
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])


def test_the_real_api_through_the_async_client_and_both_adapters() -> None:
    from langchain_phospho import PhosphoEmbeddings
    from llama_index_phospho import PhosphoEmbedding

    async def run() -> list[float]:
        async with AsyncPhosphoClient() as client:
            return await client.embed(TEXTS[0])

    vector = asyncio.run(run())
    langchain, llama_index = PhosphoEmbeddings(), PhosphoEmbedding()
    try:
        assert len(langchain.embed_query(TEXTS[0])) == len(vector)
        assert len(llama_index.get_query_embedding(TEXTS[0])) == len(vector)
    finally:
        langchain.close()
        llama_index.close()
