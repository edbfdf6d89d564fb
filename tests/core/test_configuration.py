"""Settings from arguments and the environment, injected httpx clients, lifecycle, and the
API key staying out of every repr, message and log line."""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any

import httpx
import pytest

from phospho_embed import (
    AsyncPhosphoClient,
    AuthenticationError,
    BatchEmbeddingError,
    PhosphoClient,
)
from phospho_embed.emulator import Emulator, emulator_vector
from tests.core.conftest import MakeClient

SENTINEL = "sk-SENTINEL-7f3a9c-never-print-me"


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    emulator.configure(api_key="key-from-env")
    monkeypatch.setenv("PHOSPHO_API_KEY", "key-from-env")
    monkeypatch.setenv("PHOSPHO_BASE_URL", emulator.base_url + "/")
    monkeypatch.setenv("PHOSPHO_PROJECT_ID", "project-from-env")
    with PhosphoClient() as client:
        assert client.embed("hello env") == emulator_vector("hello env", 1536)
        assert "project-from-env" in repr(client)


def test_arguments_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    emulator.configure(api_key="key-from-argument")
    monkeypatch.setenv("PHOSPHO_API_KEY", "key-from-env")
    monkeypatch.setenv("PHOSPHO_BASE_URL", "http://127.0.0.1:9/nowhere")
    with PhosphoClient(api_key="key-from-argument", base_url=emulator.base_url) as client:
        assert client.embed("hello") == emulator_vector("hello", 1536)


def test_defaults_point_at_the_real_api() -> None:
    client = PhosphoClient(api_key="k")
    assert "base_url='https://api.phospho.ai/v2'" in repr(client)
    assert "model='intent-embed'" in repr(client)
    assert "max_concurrency=16" in repr(client)
    assert "max_retries=4" in repr(client)
    assert "timeout=60" in repr(client)  # the documented defaults (docstrings, docs/)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"max_concurrency": 0}, ValueError, "max_concurrency must be >= 1"),
        ({"max_concurrency": 2.5}, TypeError, "max_concurrency must be an int"),
        ({"max_retries": -1}, ValueError, "max_retries must be >= 0"),
        ({"timeout": 0}, ValueError, "timeout must be a positive"),
        ({"timeout": "10"}, TypeError, "timeout must be a number"),
        ({"base_url": "api.phospho.ai/v2"}, ValueError, "must start with http"),
        ({"model": ""}, ValueError, "model must be"),
        ({"http_client": httpx.AsyncClient()}, TypeError, "must be an httpx.Client"),
    ],
)
def test_bad_settings_are_refused_at_construction(
    kwargs: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        PhosphoClient(api_key="k", **kwargs)


def test_async_client_refuses_a_sync_http_client() -> None:
    with pytest.raises(TypeError, match=r"must be an httpx\.AsyncClient"):
        AsyncPhosphoClient(api_key="k", http_client=httpx.Client())  # type: ignore[arg-type]


def _recorder(bodies: list[dict[str, Any]]) -> Any:
    def record(request: httpx.Request) -> None:
        bodies.append(json.loads(request.content))

    return record


def test_project_id_is_sent_only_when_set(emulator: Emulator) -> None:
    bodies: list[dict[str, Any]] = []
    with httpx.Client(event_hooks={"request": [_recorder(bodies)]}) as http:
        common: dict[str, Any] = {
            "api_key": "k",
            "base_url": emulator.base_url,
            "http_client": http,
        }
        PhosphoClient(**common).embed("no project")
        PhosphoClient(**common, project_id="proj-42").embed("with project")
    assert bodies == [
        {"input": "no project", "model": "intent-embed"},
        {"input": "with project", "model": "intent-embed", "project_id": "proj-42"},
    ]


def test_injected_sync_client_is_used_and_left_open(emulator: Emulator) -> None:
    bodies: list[dict[str, Any]] = []
    with httpx.Client(event_hooks={"request": [_recorder(bodies)]}) as http:
        client = PhosphoClient(api_key="k", base_url=emulator.base_url, http_client=http)
        client.embed_many(["one", "two", "three"])
        client.close()
        assert not http.is_closed
    assert sorted(b["input"] for b in bodies) == ["one", "three", "two"]


async def test_injected_async_client_is_used_and_left_open(emulator: Emulator) -> None:
    bodies: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        bodies.append(json.loads(request.content))

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        client = AsyncPhosphoClient(api_key="k", base_url=emulator.base_url, http_client=http)
        await client.embed_many(["one", "two"])
        await client.aclose()
        assert not http.is_closed
    assert sorted(b["input"] for b in bodies) == ["one", "two"]


def test_a_closed_client_says_so(emulator: Emulator) -> None:
    with PhosphoClient(api_key="k", base_url=emulator.base_url) as client:
        client.embed("before")
    with pytest.raises(RuntimeError, match="closed"):
        client.embed("after")
    with pytest.raises(RuntimeError, match="closed"):
        client.embed_many(["after"])


async def test_a_closed_async_client_says_so(emulator: Emulator) -> None:
    async with AsyncPhosphoClient(api_key="k", base_url=emulator.base_url) as client:
        await client.embed("before")
    with pytest.raises(RuntimeError, match="closed"):
        await client.embed("after")


# --- the key stays secret --------------------------------------------------------------------


def test_the_key_appears_nowhere(
    make_client: MakeClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # ours, httpx's and httpcore's loggers alike
    emulator.configure(api_key="the-right-key")
    face = make_client(api_key=SENTINEL, max_retries=1, max_concurrency=1)
    seen: list[str] = [repr(face.client), str(face.client)]
    for call in (lambda: face.embed("hello"), lambda: face.embed_many(["a", "b"])):
        with pytest.raises(AuthenticationError) as info:
            call()
        seen += [str(info.value), repr(info.value), repr(info.value.detail)]
        seen.append(repr(pickle.loads(pickle.dumps(info.value)).__dict__))
    emulator.configure(api_key=SENTINEL, fault="503", fault_every=2)  # retries get logged
    face.embed_many(["x y", "y z", "z w"])
    emulator.configure(fault=None)
    with pytest.raises(BatchEmbeddingError) as batch_info:
        face.embed_many(["fine", "word " * 16_000])
    seen += [str(batch_info.value), repr(batch_info.value.errors)]
    seen += [record.getMessage() for record in caplog.records]
    assert any("retry 1 of 1" in line for line in seen)  # the logs were really captured
    assert not [line for line in seen if SENTINEL in line]


def test_options_hold_the_key_behind_a_secret() -> None:
    client = PhosphoClient(api_key=SENTINEL)
    options = client.options
    assert SENTINEL not in repr(options) + str(options)
    assert SENTINEL not in str(vars(client))
    assert options.require_api_key() == SENTINEL
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(options)


def test_retries_are_logged_with_their_delay(
    make_client: MakeClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="phospho_embed")
    emulator.configure(fault="500", fault_every=1)
    client = make_client(max_retries=2)
    with pytest.raises(Exception, match="500"):
        client.embed("hello")
    messages = [r.getMessage() for r in caplog.records if r.name == "phospho_embed"]
    assert len(messages) == 2
    assert messages[0].startswith("phospho: retry 1 of 2 in ")
    assert "after ServerError: 500 Internal Server Error" in messages[0]


def test_usage_matches_what_the_server_counted(make_client: MakeClient, emulator: Emulator) -> None:
    client = make_client()
    client.embed_many(["alpha beta", "gamma", "delta epsilon zeta"])
    usage = client.usage
    assert usage.requests == 3
    assert usage.retries == 0
    assert usage.prompt_tokens == usage.total_tokens == emulator.stats.prompt_tokens == 6
