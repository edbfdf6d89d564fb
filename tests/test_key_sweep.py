"""One sentinel key through every surface at once: reprs, errors, warnings, DEBUG logs
(ours, httpx's, httpcore's), LangChain dumps, LlamaIndex serialization and events, and the
command line's output. If the key shows up anywhere, this test names where."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import warnings
from typing import Any

import pytest
from langchain_core.load import dumpd, dumps
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index_instrumentation import get_dispatcher

from langchain_phospho import PhosphoEmbeddings
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import AsyncPhosphoClient, PhosphoClient, PhosphoError
from phospho_embed.cli import main as cli
from phospho_embed.emulator import Emulator

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
