"""A faithful local stand-in for phospho's intent-embed API, for tests, benchmarks and demos.

A real HTTP server (FastAPI on uvicorn) speaking the wire contract of
``POST /v2/embeddings``: same statuses, same error shapes, deterministic vectors (similar
wording, similar vector), plus knobs to inject latency and faults and counters to assert on:

```python
from phospho_embed.emulator import Emulator

with Emulator(latency=0.05).start() as emu:
    ...  # point a client at emu.base_url
    print(emu.stats.peak_in_flight)
```

From a shell: ``python -m phospho_embed.emulator --port 8000``. In pytest, the
``phospho_emulator`` fixture gives a running, freshly reset emulator.

Needs the ``emulator`` extra: ``pip install 'phospho-embed[emulator]'``.
"""

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "phospho_embed.emulator needs FastAPI and uvicorn: pip install 'phospho-embed[emulator]'"
    ) from error

from ._server import Emulator
from ._settings import FAULTS, EmulatorSettings
from ._state import EmulatorStats
from ._vectors import TOKEN_LIMIT, count_tokens, emulator_vector
from .cli import build_parser, main

__all__ = [
    "FAULTS",
    "TOKEN_LIMIT",
    "Emulator",
    "EmulatorSettings",
    "EmulatorStats",
    "build_parser",
    "count_tokens",
    "emulator_vector",
    "main",
]
