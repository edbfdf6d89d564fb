"""`PhosphoEmbeddings` against the emulator: concurrency, order, async on fresh loops,
injected clients, progress bars, secrets, serialization and bad input."""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
from typing import Any

import httpx
import pytest
from langchain_core.load import dumpd, dumps, loads
from pydantic import ValidationError

from langchain_phospho import PhosphoEmbeddings, __version__
from phospho_embed import (
    AuthenticationError,
    BadRequestError,
    BatchEmbeddingError,
    MissingAPIKeyError,
    RetryPolicy,
)
from phospho_embed import (
    __version__ as core_version,
)
from phospho_embed.emulator import Emulator, emulator_vector
from tests.langchain.conftest import MakeEmbeddings

TEXTS = [f"support ticket {i} about invoice {i % 7}" for i in range(30)]
SENTINEL = "sk-SENTINEL-langchain-4b1d"


def vec(text: str) -> list[float]:
    return emulator_vector(text, 1536)


def test_package_exports_the_class_and_version() -> None:
    assert __version__ == core_version
    assert PhosphoEmbeddings.__module__ == "langchain_phospho.embeddings"


def test_embed_documents_is_concurrent_ordered_and_bounded(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    phospho_emulator.configure(latency=0.03, jitter=0.02)
    embeddings = make_embeddings(max_concurrency=4)
    assert embeddings.embed_documents(TEXTS) == [vec(t) for t in TEXTS]
    assert 2 <= phospho_emulator.stats.peak_in_flight <= 4


async def test_aembed_documents_is_concurrent_ordered_and_bounded(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    phospho_emulator.configure(latency=0.03, jitter=0.02)
    embeddings = make_embeddings(max_concurrency=4)
    assert await embeddings.aembed_documents(TEXTS) == [vec(t) for t in TEXTS]
    assert 2 <= phospho_emulator.stats.peak_in_flight <= 4
    await embeddings.aclose()


def test_duplicates_are_requested_once(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    texts = ["refund", "refund", "hello", "refund"]
    assert make_embeddings().embed_documents(texts) == [vec(t) for t in texts]
    assert phospho_emulator.stats.inputs == {"refund": 1, "hello": 1}


def test_queries_are_one_request_each(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    embeddings = make_embeddings()
    assert embeddings.embed_query("where is my parcel") == vec("where is my parcel")
    assert asyncio.run(embeddings.aembed_query("refund please")) == vec("refund please")
    assert phospho_emulator.stats.requests == 2
    assert embeddings.usage.requests == 2


def test_one_instance_works_across_fresh_event_loops(
    make_embeddings: MakeEmbeddings,
) -> None:
    embeddings = make_embeddings()
    assert asyncio.run(embeddings.aembed_documents(["first loop"])) == [vec("first loop")]
    assert asyncio.run(embeddings.aembed_documents(["second loop"])) == [vec("second loop")]
    assert asyncio.run(embeddings.aembed_query("third loop")) == vec("third loop")


def test_empty_list_sends_nothing(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    embeddings = make_embeddings()
    assert embeddings.embed_documents([]) == []
    assert asyncio.run(embeddings.aembed_documents([])) == []
    assert phospho_emulator.stats.requests == 0


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        (["fine", ""], ValueError, r"texts\[1\] is empty"),
        (["fine", "ok", " \n"], ValueError, r"texts\[2\] is empty"),
        (["fine", 42], TypeError, r"texts\[1\] must be a str, got int"),
        (["fine", None], TypeError, r"texts\[1\] must be a str, got NoneType"),
    ],
)
def test_bad_input_is_rejected_before_any_request(
    make_embeddings: MakeEmbeddings,
    phospho_emulator: Emulator,
    texts: list[Any],
    error: type[Exception],
    message: str,
) -> None:
    embeddings = make_embeddings()
    with pytest.raises(error, match=message):
        embeddings.embed_documents(texts)
    with pytest.raises(error, match=message):
        asyncio.run(embeddings.aembed_documents(texts))
    with pytest.raises(ValueError, match="text is empty"):
        embeddings.embed_query("   ")
    assert phospho_emulator.stats.requests == 0


def test_errors_are_the_cores_typed_exceptions(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    phospho_emulator.configure(api_key="right-key")
    embeddings = make_embeddings(api_key="wrong-key")
    with pytest.raises(AuthenticationError):
        embeddings.embed_documents(["a", "b"])
    with pytest.raises(AuthenticationError):
        asyncio.run(embeddings.aembed_query("a"))
    with pytest.raises(MissingAPIKeyError, match="PHOSPHO_API_KEY"):
        make_embeddings(api_key=None).embed_query("no key")


def test_partial_failures_keep_every_vector(make_embeddings: MakeEmbeddings) -> None:
    texts = ["short one", "word " * 16_000, "short two"]
    with pytest.raises(BatchEmbeddingError) as info:
        make_embeddings().embed_documents(texts)
    assert info.value.embeddings == [vec("short one"), None, vec("short two")]
    assert isinstance(info.value.errors[1], BadRequestError)


def test_injected_http_clients_are_used(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> None:
        seen.append("sync:" + json.loads(request.content)["input"])

    async def arecord(request: httpx.Request) -> None:
        seen.append("async:" + json.loads(request.content)["input"])

    http = httpx.Client(event_hooks={"request": [record]})
    embeddings = make_embeddings(http_client=http)
    embeddings.embed_documents(["s1", "s2"])

    async def run_async() -> None:
        async with httpx.AsyncClient(event_hooks={"request": [arecord]}) as ahttp:
            aembeddings = make_embeddings(http_async_client=ahttp)
            await aembeddings.aembed_documents(["a1"])
            await aembeddings.aembed_query("a2")

    asyncio.run(run_async())
    embeddings.close()
    assert not http.is_closed  # the caller owns it
    http.close()
    assert sorted(seen) == ["async:a1", "async:a2", "sync:s1", "sync:s2"]


def test_progress_bar_advances_per_text(
    make_embeddings: MakeEmbeddings, capsys: pytest.CaptureFixture[str]
) -> None:
    embeddings = make_embeddings(show_progress_bar=True)
    embeddings.embed_documents(["a b", "c d", "a b", "e f"])
    assert "4/4" in capsys.readouterr().err
    asyncio.run(embeddings.aembed_documents(["x y", "y z", "z w"]))
    assert "3/3" in capsys.readouterr().err


def test_progress_bar_without_tqdm_explains_the_extra(
    make_embeddings: MakeEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import now raises ImportError
    with pytest.raises(ImportError, match=r"phospho-embed\[progress\]"):
        make_embeddings(show_progress_bar=True)


def test_construction_sends_nothing(phospho_emulator: Emulator) -> None:
    embeddings = PhosphoEmbeddings(api_key="k", base_url=phospho_emulator.base_url)
    assert embeddings.model == "intent-embed"
    assert phospho_emulator.stats.requests == 0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"chunk_size": 1}, "chunk_size"),
        ({"openai_api_key": "x"}, "openai_api_key"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"timeout": -1}, "timeout"),
        ({"base_url": "api.phospho.ai"}, "must start with http"),
    ],
)
def test_bad_arguments_are_rejected_clearly(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises((ValidationError, ValueError), match=fragment):
        PhosphoEmbeddings(api_key="k", **kwargs)


def test_the_key_appears_in_no_repr_or_serialization(phospho_emulator: Emulator) -> None:
    embeddings = PhosphoEmbeddings(api_key=SENTINEL, base_url=phospho_emulator.base_url)
    rendered = [
        repr(embeddings),
        str(embeddings),
        repr(embeddings.model_dump()),
        embeddings.model_dump_json(),
        json.dumps(dumpd(embeddings)),
        dumps(embeddings),
        repr(embeddings._client),
        repr(embeddings._async_client),
    ]
    assert not [text for text in rendered if SENTINEL in text]
    assert dumpd(embeddings)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["PHOSPHO_API_KEY"],
    }


@pytest.mark.filterwarnings("ignore:The function `loads` is in beta")
def test_loads_rebuilds_a_working_embedder(phospho_emulator: Emulator) -> None:
    phospho_emulator.configure(api_key=SENTINEL)
    original = PhosphoEmbeddings(api_key=SENTINEL, base_url=phospho_emulator.base_url)
    rebuilt = loads(
        dumps(original),
        secrets_map={"PHOSPHO_API_KEY": SENTINEL},
        valid_namespaces=["langchain_phospho"],
        allowed_objects=[PhosphoEmbeddings],
    )
    assert isinstance(rebuilt, PhosphoEmbeddings)
    assert rebuilt.base_url == original.base_url
    assert rebuilt.embed_query("hello again") == vec("hello again")


def test_a_pickled_copy_works_after_use(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    phospho_emulator.configure(api_key="pickled-key")
    embeddings = make_embeddings(api_key="pickled-key")
    embeddings.embed_query("before pickling")  # live clients exist now
    copy = pickle.loads(pickle.dumps(embeddings))
    assert copy.embed_documents(["after pickling"]) == [vec("after pickling")]
    assert asyncio.run(copy.aembed_query("async copy")) == vec("async copy")
    copy.close()


def test_throttling_and_backoff_settings_reach_the_core(
    make_embeddings: MakeEmbeddings, phospho_emulator: Emulator
) -> None:
    # Every second request is throttled (retried until it lands on an odd one); the embedder
    # keeps its bound fixed.
    phospho_emulator.configure(fault="429", fault_every=2, retry_after=0)
    fast = RetryPolicy(initial_delay=0.001, max_delay=0.01)
    embeddings = make_embeddings(
        max_concurrency=4, max_retries=50, adaptive_concurrency=False, retry_policy=fast
    )
    texts = [f"text {i}" for i in range(8)]
    assert embeddings.embed_documents(texts) == [emulator_vector(t) for t in texts]
    assert phospho_emulator.stats.by_status[429] > 0
    # Fixed: still four after the 429s (an adaptive bound would have come down).
    assert embeddings._client.concurrency_limit == 4
    assert embeddings.retry_policy == fast
    assert "retry_policy" not in dumps(embeddings)  # not serialized, like an injected client
