"""Fixtures for the LangChain adapter's tests: embedders aimed at the local emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langchain_phospho import PhosphoEmbeddings
from phospho_embed.emulator import Emulator

MakeEmbeddings = Callable[..., PhosphoEmbeddings]


@pytest.fixture
def make_embeddings(phospho_emulator: Emulator) -> Iterator[MakeEmbeddings]:
    """A factory of `PhosphoEmbeddings` pointed at the emulator; closed after the test."""
    made: list[PhosphoEmbeddings] = []

    def make(**kwargs: Any) -> PhosphoEmbeddings:
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("base_url", phospho_emulator.base_url)
        embeddings = PhosphoEmbeddings(**kwargs)
        made.append(embeddings)
        return embeddings

    yield make
    for embeddings in made:
        embeddings.close()
