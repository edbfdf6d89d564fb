"""`phospho_embed.encoders`: the four kinds of encoder behind one function, and `as_matrix`."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from langchain_phospho import PhosphoEmbeddings
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import AsyncPhosphoClient, PhosphoClient
from phospho_embed.emulator import Emulator, emulator_vector
from phospho_embed.encoders import aencode, as_matrix, encode, encoder_kind
from tests.discovery.conftest import TEST_KEY

TEXTS = ["cancel my order", "where is my parcel?", "cancel my order"]


def expected() -> np.ndarray:
    return np.asarray([emulator_vector(text) for text in TEXTS], dtype=np.float32)


class FakeLangChain:
    """Only what a LangChain Embeddings has: no async method (encode runs it in a thread)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(text)), 1.0] for text in texts]


class FakeLlamaIndex:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def get_text_embedding_batch(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        self.calls.append(texts)
        return [[1.0, float(len(text))] for text in texts]

    async def aget_text_embedding_batch(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return [[2.0, float(len(text))] for text in texts]


def test_core_client_vectors_are_the_emulators(phospho_emulator: Emulator) -> None:
    with PhosphoClient(api_key=TEST_KEY, base_url=phospho_emulator.base_url) as client:
        matrix = encode(client, TEXTS)
    assert matrix.dtype == np.float32
    assert matrix.shape == (3, 1536)
    np.testing.assert_allclose(matrix, expected(), atol=1e-6)
    assert phospho_emulator.stats.requests == 2  # the repeated text is asked once


def test_async_client_from_sync_code_runs_its_own_loop(phospho_emulator: Emulator) -> None:
    client = AsyncPhosphoClient(api_key=TEST_KEY, base_url=phospho_emulator.base_url)
    np.testing.assert_allclose(encode(client, TEXTS), expected(), atol=1e-6)
    asyncio.run(client.aclose())


async def test_async_client_inside_a_running_loop_is_a_clear_error(
    phospho_emulator: Emulator,
) -> None:
    async with AsyncPhosphoClient(api_key=TEST_KEY, base_url=phospho_emulator.base_url) as client:
        with pytest.raises(RuntimeError, match="adiscover_intents"):
            encode(client, TEXTS)
        np.testing.assert_allclose(await aencode(client, TEXTS), expected(), atol=1e-6)


def test_framework_adapters_give_the_same_vectors(phospho_emulator: Emulator) -> None:
    langchain = PhosphoEmbeddings(api_key=TEST_KEY, base_url=phospho_emulator.base_url)
    llama = PhosphoEmbedding(api_key=TEST_KEY, base_url=phospho_emulator.base_url)
    try:
        assert encoder_kind(langchain) == "langchain"
        assert encoder_kind(llama) == "llama-index"
        np.testing.assert_allclose(encode(langchain, TEXTS), expected(), atol=1e-6)
        np.testing.assert_allclose(encode(llama, TEXTS), expected(), atol=1e-6)
        np.testing.assert_allclose(asyncio.run(aencode(langchain, TEXTS)), expected(), atol=1e-6)
        np.testing.assert_allclose(asyncio.run(aencode(llama, TEXTS)), expected(), atol=1e-6)
    finally:
        langchain.close()
        llama.close()


def test_duck_typed_encoders_and_their_async_fallbacks() -> None:
    llama = FakeLlamaIndex()
    assert encode(llama, ["ab"]).tolist() == [[1.0, 2.0]]
    assert asyncio.run(aencode(llama, ["ab"])).tolist() == [[2.0, 2.0]]  # its async method
    assert encode(FakeLangChain(), ["abc"]).tolist() == [[3.0, 1.0]]
    assert asyncio.run(aencode(FakeLangChain(), ["abc"])).tolist() == [[3.0, 1.0]]  # thread


def test_no_texts_call_nothing() -> None:
    llama = FakeLlamaIndex()
    assert encode(llama, []).shape == (0, 0)
    assert llama.calls == []


@pytest.mark.parametrize("encoder", [object(), "client", [1.0, 2.0]])
def test_unaccepted_encoder_lists_what_is_accepted(encoder: object) -> None:
    with pytest.raises(TypeError, match=r"PhosphoClient.*LangChain Embeddings.*LlamaIndex"):
        encode(encoder, ["x"])  # type: ignore[arg-type]


def test_one_string_instead_of_a_list_is_refused() -> None:
    with pytest.raises(TypeError, match="not one string"):
        encode(FakeLangChain(), "hello")


class BadEncoder:
    def __init__(self, rows: Any) -> None:
        self.rows = rows

    def embed_documents(self, texts: list[str]) -> Any:
        return self.rows


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[1.0, 2.0], [1.0]], r"encoder's vectors\[1\] has 1 values but .*\[0\] has 2"),
        ([[1.0, float("nan")], [1.0, 2.0]], r"encoder's vectors\[0\] holds a NaN"),
        ([[1.0, 2.0]], "expected 2 vectors, got 1"),
        ([[], []], "zero length"),
    ],
)
def test_an_encoder_returning_a_bad_matrix_is_named(rows: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode(BadEncoder(rows), ["a", "b"])


def test_as_matrix_keeps_a_float32_array_and_checks_the_rest() -> None:
    array = np.ones((3, 4), dtype=np.float32)
    assert as_matrix(array) is array
    assert as_matrix(np.ones((2, 3))).dtype == np.float32
    with pytest.raises(ValueError, match="two-dimensional"):
        as_matrix(np.ones(4))
    with pytest.raises(ValueError, match=r"vectors\[2\] holds a NaN or infinite"):
        as_matrix(np.array([[1.0, 2.0], [3.0, 4.0], [np.inf, 0.0]]))
    with pytest.raises(TypeError, match=r"vectors\[1\] must be a sequence of numbers"):
        as_matrix([[1.0], 2.0])
    with pytest.raises(TypeError, match="real numbers"):
        as_matrix(np.array([["a"]]))
