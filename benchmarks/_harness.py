"""What every benchmark scenario needs: an emulator in its own process, the texts to send,
the alternatives configured the one way that works against this API, and the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx

DATA = Path(__file__).parent / "data"
API_KEY = "benchmark"  # the emulator accepts any bearer token
MODEL = "intent-embed"  # the only model the API (and the emulator) accepts

#: What the page says about every version that produced it: ours and the alternatives.
_PACKAGES = (
    "phospho-embed",
    "httpx",
    "numpy",
    "langchain-core",
    "llama-index-core",
    "langchain-openai",
    "llama-index-embeddings-openai",
    "openai",
)


@contextmanager
def emulator_process(**settings: object) -> Iterator[str]:
    """Run ``python -m phospho_embed.emulator`` on a free 127.0.0.1 port; yield its base URL.

    A separate process, so the emulator's CPU never counts as the client's.
    ``settings`` become flags: ``latency=0.2`` -> ``--latency 0.2``.
    """
    command = [sys.executable, "-m", "phospho_embed.emulator", "--port", "0"]
    for name, value in settings.items():
        if value is not None:
            command += [f"--{name.replace('_', '-')}", str(value)]
    # As a context manager, Popen also closes the pipe: no file left for the GC to warn about.
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:  # noqa: S603 - our own module
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # "phospho emulator listening on http://..."
            if "listening on " not in line:
                raise RuntimeError(f"the emulator did not start: {line!r}")
            yield line.rsplit(" ", 1)[-1].strip()
        finally:
            process.terminate()
            process.wait(timeout=10)


def _emulator_root(base_url: str) -> str:
    # The API lives under /v2; the emulator's own endpoints are at the root.
    return base_url.rstrip("/").rsplit("/", 1)[0]


def emulator_stats(base_url: str) -> dict[str, Any]:
    """The counters of the emulator serving ``base_url`` (requests, by_status, peak_in_flight)."""
    response = httpx.get(f"{_emulator_root(base_url)}/_emulator/stats", timeout=10)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def reset_emulator(base_url: str) -> None:
    """Zero the emulator's counters (its settings stay)."""
    httpx.post(f"{_emulator_root(base_url)}/_emulator/reset", timeout=10).raise_for_status()


@lru_cache(maxsize=1)
def _messages() -> tuple[str, ...]:
    train = json.loads((DATA / "clinc150" / "train.json").read_text())["in_scope"]
    return tuple(dict.fromkeys(text for text, _ in train))


def sample_texts(count: int, tag: str | None = None) -> list[str]:
    """``count`` distinct, realistic user messages (CLINC150's training texts).

    Without ``tag`` the messages are used as they are (at most 7,500). With a tag, each gets
    a ``(tag i)`` suffix: as many as needed, and disjoint from those of any other tag, so
    that the emulator never answers them from its cache of earlier runs.
    """
    messages = _messages()
    if tag is None:
        if count > len(messages):
            raise ValueError(f"only {len(messages)} distinct messages; pass a tag for more")
        return list(messages[:count])
    return [f"{messages[i % len(messages)]} ({tag} {i})" for i in range(count)]


# -- the alternatives, configured the one way that works against this API ----------------


def openai_langchain(url: str, http_client: Any, http_async_client: Any) -> Any:
    """LangChain's OpenAIEmbeddings in the one configuration that works against this API."""
    from langchain_openai import OpenAIEmbeddings
    from pydantic import SecretStr

    return OpenAIEmbeddings(
        model=MODEL,
        base_url=url,
        api_key=SecretStr(API_KEY),
        # The API takes exactly one text per request; the default sends 1,000.
        chunk_size=1,
        # The default tokenizes with tiktoken (which downloads its encodings) and sends token
        # ids, which this API rejects: send the raw text instead.
        check_embedding_ctx_length=False,
        # The openai SDK asks for base64 by default; phospho documents floats.
        model_kwargs={"encoding_format": "float"},
        # Passed in so that the benchmark can close them (the SDK's own defaults otherwise).
        http_client=http_client,
        http_async_client=http_async_client,
    )


def openai_llama(url: str, http_client: Any, async_http_client: Any, **kwargs: Any) -> Any:
    """LlamaIndex's OpenAIEmbedding in the one configuration that works against this API."""
    from llama_index.embeddings.openai import OpenAIEmbedding

    return OpenAIEmbedding(
        # `model` must be one of OpenAI's model names (it is looked up in an enum); a
        # `model_name` keyword is what the class sends as the model instead.
        model_name=MODEL,
        api_base=url,
        api_key=API_KEY,
        # The API takes exactly one text per request; the default sends 100.
        embed_batch_size=1,
        additional_kwargs={"encoding_format": "float"},
        http_client=http_client,
        async_http_client=async_http_client,
        **kwargs,
    )


@dataclass(frozen=True)
class Machine:
    """Where the numbers come from."""

    machine: str
    cores: int | None
    system: str
    python: str
    packages: str  # "phospho-embed 0.1.0, httpx 0.28.1, ..."


def machine() -> Machine:
    """This machine, and the versions of ours and of the alternatives installed."""
    packages = []
    for name in _PACKAGES:
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return Machine(
        platform.machine(),
        os.cpu_count(),
        platform.system(),
        platform.python_version(),
        ", ".join(packages),
    )
