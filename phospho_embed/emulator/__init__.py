"""A faithful local stand-in for phospho's intent-embed API, for tests, benchmarks and demos.

A real HTTP server (FastAPI on uvicorn) speaking the wire contract of
``POST /v2/embeddings``: same statuses, same error shapes, deterministic vectors, plus knobs
to inject latency and faults and counters to assert on. The vectors are ``"semantic"`` (a
small static embedding model read offline from the ``wordllama`` wheel, lifted exactly to
1536 dimensions: paraphrases score high) when the ``semantic`` extra is installed, else
``"lexical"`` (hashed words: only shared wording scores high); ``vectors=`` chooses
(``Emulator(vectors="lexical")``):

```python
from phospho_embed.emulator import Emulator

with Emulator(latency=0.05).start() as emu:
    ...  # point a client at emu.base_url
    print(emu.stats.peak_in_flight)
```

From a shell: ``python -m phospho_embed.emulator --port 8000``. In pytest, the
``phospho_emulator`` fixture gives a running, freshly reset emulator.

Needs the ``emulator`` extra: ``pip install 'phospho-embed[emulator]'`` (which brings the
``semantic`` extra where the model has wheels: Linux x86-64, macOS, Windows x86-64).
"""

try:
    import fastapi  # noqa: F401
    import orjson  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "phospho_embed.emulator needs FastAPI, uvicorn and orjson: "
        "pip install 'phospho-embed[emulator]'"
    ) from error

from ._semantic import SemanticModelUnavailableError, semantic_available
from ._server import Emulator
from ._settings import FAULTS, EmulatorSettings
from ._state import EmulatorStats
from ._vectors import (
    TOKEN_LIMIT,
    VECTORS,
    VECTORS_ENV,
    VectorKind,
    VectorsSetting,
    count_tokens,
    emulator_vector,
    resolve_vectors,
)
from .cli import build_parser, main

__all__ = [
    "FAULTS",
    "TOKEN_LIMIT",
    "VECTORS",
    "VECTORS_ENV",
    "Emulator",
    "EmulatorSettings",
    "EmulatorStats",
    "SemanticModelUnavailableError",
    "VectorKind",
    "VectorsSetting",
    "build_parser",
    "count_tokens",
    "emulator_vector",
    "main",
    "resolve_vectors",
    "semantic_available",
]
