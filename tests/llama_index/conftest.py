"""Fixtures for the LlamaIndex adapter's tests: models aimed at the emulator, a clean
environment, and LlamaIndex's global ``Settings`` restored after every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core import Settings

from llama_index_phospho import PhosphoEmbedding
from phospho_embed.emulator import Emulator, emulator_vector

TEST_KEY = "test-key-not-secret"
MakeModel = Callable[..., PhosphoEmbedding]


def vec(text: str) -> list[float]:
    """What the emulator sends for ``text``: the vector a model must return for it."""
    return emulator_vector(text, 1536)


@pytest.fixture(autouse=True)
def _restore_llama_index_settings() -> Iterator[None]:
    """``Settings`` is process-wide: a test that sets it must not configure the next one."""
    saved = (Settings._embed_model, Settings._llm, Settings._callback_manager)
    yield
    Settings._embed_model, Settings._llm, Settings._callback_manager = saved


@pytest.fixture
def emulator(phospho_emulator: Emulator) -> Emulator:
    """The emulator, reset to its defaults for this test."""
    return phospho_emulator


@pytest.fixture
def make_model(emulator: Emulator) -> Iterator[MakeModel]:
    """A factory of models aimed at the emulator; their pools are closed after the test."""
    models: list[PhosphoEmbedding] = []

    def make(**kwargs: Any) -> PhosphoEmbedding:
        kwargs.setdefault("api_key", TEST_KEY)
        kwargs.setdefault("base_url", emulator.base_url)
        model = PhosphoEmbedding(**kwargs)
        models.append(model)
        return model

    yield make
    for model in models:
        model.close()
