"""Fixtures for the intent classifier's tests: a client aimed at the emulator, and a
classifier of the demo's support intents built through it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from phospho_embed import PhosphoClient
from phospho_embed.demo_data import EXAMPLES
from phospho_embed.emulator import Emulator
from phospho_embed.intents import IntentClassifier


@pytest.fixture
def emulator(phospho_emulator: Emulator) -> Emulator:
    """The emulator, reset to its defaults for this test."""
    return phospho_emulator


@pytest.fixture
def client(emulator: Emulator) -> Iterator[PhosphoClient]:
    """A sync client aimed at the emulator, closed after the test."""
    with PhosphoClient(api_key="k", base_url=emulator.base_url) as client:
        yield client


@pytest.fixture
def classifier(client: PhosphoClient, semantic_vectors: Emulator) -> IntentClassifier:
    """The demo's support intents, on semantic vectors (its messages match their intents by
    meaning, not wording)."""
    return IntentClassifier.from_examples(EXAMPLES, client)
