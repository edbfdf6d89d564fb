"""pytest fixtures serving the phospho emulator (registered through the ``pytest11`` entry point).

Loaded by every pytest run where ``phospho-embed`` is installed, so nothing heavy is imported
here: FastAPI and uvicorn are imported by the fixtures, only when a test asks for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from phospho_embed.emulator import Emulator


@pytest.fixture(scope="session")
def phospho_emulator_server() -> Iterator[Emulator]:
    """One phospho emulator for the whole session, on a free 127.0.0.1 port.

    Prefer ``phospho_emulator``, which also resets it before each test. Use this one directly
    only for session- or module-scoped fixtures of your own; remember its settings and
    counters are shared by every test that uses it.
    """
    from phospho_embed.emulator import Emulator

    emulator = Emulator().start(host="127.0.0.1", port=0)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def phospho_emulator(phospho_emulator_server: Emulator) -> Emulator:
    """A running phospho emulator, reset to default settings with zeroed counters.

    Point the code under test at ``phospho_emulator.base_url`` (any API key works unless you
    set one), change its behaviour with ``phospho_emulator.configure(...)``, and assert on
    ``phospho_emulator.stats``:

    ```python
    def test_retries(phospho_emulator):
        phospho_emulator.configure(fault="500", fault_every=2, latency=0.01)
        client = PhosphoClient(api_key="k", base_url=phospho_emulator.base_url)
        client.embed("hello")
        assert phospho_emulator.stats.by_status == {200: 1, 500: 1}
    ```
    """
    phospho_emulator_server.reset()
    return phospho_emulator_server
