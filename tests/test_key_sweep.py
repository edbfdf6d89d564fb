"""One sentinel key through every surface at once: reprs, errors, warnings, DEBUG logs
(ours, httpx's, httpcore's), LangChain dumps, LlamaIndex serialization and events, and the
command line's output. If the key shows up anywhere, this test names where."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.load import dumpd, dumps
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index_instrumentation import get_dispatcher

from langchain_phospho import PhosphoEmbeddings
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import AsyncPhosphoClient, PhosphoClient, PhosphoError, RetryPolicy
from phospho_embed.cli import main as cli
from phospho_embed.emulator import Emulator
from tests.core.hostile import answer, authorization, hostile_server

SENTINEL = "sk-SWEEP-5e7a1c9b-never-shown"


class Events(BaseEventHandler):
    """Every LlamaIndex instrumentation event, rendered."""

    seen: list[str] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.seen.append(event.model_dump_json())


def test_the_key_appears_on_no_surface(
    phospho_emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PHOSPHO_API_KEY", "PHOSPHO_BASE_URL", "PHOSPHO_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore
    phospho_emulator.configure(api_key="the-right-key", fault="503", fault_every=3)
    url = phospho_emulator.base_url
    surfaces: dict[str, str] = {}

    def refused(where: str, call: Any) -> None:
        """Run a call the emulator refuses (wrong key), keeping what the error shows."""
        try:
            call()
        except PhosphoError as error:
            surfaces[where] = f"{error!s} {error!r} {pickle.loads(pickle.dumps(error)).args}"
        else:
            raise AssertionError(f"{where}: the wrong key was accepted")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = PhosphoClient(api_key=SENTINEL, base_url=url, max_retries=1)
        aclient = AsyncPhosphoClient(api_key=SENTINEL, base_url=url)
        surfaces["client repr"] = f"{client!r} {client!s} {aclient!r} {vars(client)}"
        refused("embed", lambda: client.embed("hello"))
        refused("embed_many", lambda: client.embed_many(["a", "b", "c"]))
        refused("async embed_many", lambda: asyncio.run(aclient.embed_many(["a", "b"])))
        client.close()

        lc = PhosphoEmbeddings(api_key=SENTINEL, base_url=url)
        surfaces["langchain"] = " ".join(
            [
                repr(lc),
                str(lc),
                repr(lc.model_dump()),
                lc.model_dump_json(),
                json.dumps(dumpd(lc)),
                dumps(lc),
            ]
        )
        refused("langchain embed", lambda: lc.embed_documents(["x"]))

        handler = Events()
        dispatcher = get_dispatcher()
        dispatcher.add_event_handler(handler)
        try:
            li = PhosphoEmbedding(api_key=SENTINEL, base_url=url)
            surfaces["llama_index"] = f"{li!r} {li.to_dict()} {li.to_json()}"
            refused("llama_index embed", lambda: li.get_text_embedding_batch(["y"]))
        finally:
            dispatcher.event_handlers.remove(handler)
        surfaces["llama_index events"] = " ".join(handler.seen)
        assert handler.seen  # events were really captured

        capsys.readouterr()
        cli(["classify", "--examples", "/nonexistent.json", "hi", "--api-key", SENTINEL])
        code = cli(["embed", "/nonexistent.txt", "-o", "/tmp/never.jsonl", "--api-key", SENTINEL])
        captured = capsys.readouterr()
        surfaces["cli"] = captured.out + captured.err
        assert code != 0
    surfaces["warnings"] = " ".join(str(w.message) for w in caught)
    surfaces["logs"] = "\n".join(record.getMessage() for record in caplog.records)
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # DEBUG was on

    leaks = [where for where, text in surfaces.items() if SENTINEL in text]
    assert leaks == []


def test_a_key_echoed_by_the_server_appears_on_no_surface(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A server that puts the Authorization header it got into its 401 and 503 answers:
    every path that shows a server's text (errors, retry logs, the CLI) redacts the key."""
    caplog.set_level(logging.INFO, logger="phospho_embed")
    served = {"n": 0}

    def echo(request: bytes) -> Iterator[tuple[float, bytes]]:
        served["n"] += 1
        status = "503 Service Unavailable" if served["n"] % 2 else "401 Unauthorized"
        detail = json.dumps({"detail": f"Invalid token: {authorization(request)}"})
        yield 0, answer(status, detail.encode(), "Content-Type: application/json")

    surfaces: dict[str, str] = {}

    def shown(where: str, call: Any) -> None:
        try:
            call()
        except PhosphoError as error:
            surfaces[where] = f"{error!s} {error!r} {getattr(error, 'detail', '')}"
        else:
            raise AssertionError(f"{where}: the echoing server's 401 was not raised")

    with hostile_server(echo) as url:
        options = {"api_key": SENTINEL, "base_url": url, "max_retries": 1}
        client = PhosphoClient(**options, retry_policy=RetryPolicy(0.001, 0.001))
        aclient = AsyncPhosphoClient(**options, retry_policy=RetryPolicy(0.001, 0.001))
        lc = PhosphoEmbeddings(**options)
        li = PhosphoEmbedding(**options)
        shown("sync", lambda: client.embed("a"))
        shown("async", lambda: asyncio.run(aclient.embed_many(["a", "b"])))
        shown("langchain", lambda: lc.embed_documents(["a"]))
        shown("langchain async", lambda: asyncio.run(lc.aembed_query("a")))
        shown("llama_index", lambda: li.get_text_embedding_batch(["a"]))
        shown("llama_index async", lambda: asyncio.run(li.aget_query_embedding("a")))
        source = tmp_path / "in.txt"
        source.write_text("one\ntwo\n")
        capsys.readouterr()
        code = cli(["embed", str(source), "-o", str(tmp_path / "out.jsonl"),
                    "--api-key", SENTINEL, "--base-url", url, "--max-retries", "1"])  # fmt: skip
        captured = capsys.readouterr()
        surfaces["cli"] = captured.out + captured.err
        assert code == 3  # stopped by the 401
        client.close()
    surfaces["logs"] = "\n".join(record.getMessage() for record in caplog.records)
    assert "[redacted]" in surfaces["sync"]  # the server really echoed the key
    assert any("retry 1 of 1" in r.getMessage() for r in caplog.records)  # a 503 was logged
    leaks = [where for where, text in surfaces.items() if SENTINEL in text]
    assert leaks == []
