"""Helpers shared by the test packages (import them; fixtures live in conftest modules)."""

from __future__ import annotations

import pytest

from phospho_embed.emulator import semantic_available

requires_semantic = pytest.mark.skipif(
    not semantic_available(),
    reason="the semantic model is not installed: pip install 'phospho-embed[semantic]'",
)
"""Skip a test that needs the emulator's semantic vectors where the model has no wheel."""

VECTOR_KINDS = [
    pytest.param("semantic", marks=requires_semantic, id="semantic"),
    pytest.param("lexical", id="lexical"),
]
"""``@pytest.mark.parametrize("vectors", VECTOR_KINDS)``: run a test on both kinds."""
