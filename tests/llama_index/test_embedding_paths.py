"""Every way LlamaIndex asks for vectors: query, text and batch methods, sync and async;
order, de-duplication, input checks, the concurrency bound, fresh event loops, and the
``BaseEmbedding`` keywords (``num_workers``, ``rate_limiter``, ``embeddings_cache``,
``callback_manager``). All over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.callbacks.schema import EventPayload
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.embedding import EmbeddingStartEvent
from llama_index.core.rate_limiter import BaseRateLimiter
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index_instrumentation import get_dispatcher

from phospho_embed import AuthenticationError, BatchEmbeddingError
from phospho_embed.emulator import Emulator
from tests.llama_index.conftest import TEST_KEY, MakeModel, vec


def texts(name: str, size: int) -> list[str]:
    return [f"{name} message {i}" for i in range(size)]


# -- the six methods ------------------------------------------------------------------------


def test_sync_methods(make_model: MakeModel, emulator: Emulator) -> None:
    model = make_model()
    assert model.get_query_embedding("cancel my order") == vec("cancel my order")
    assert model.get_text_embedding("refund please") == vec("refund please")
    batch = ["b", "a", "c", "a", "b"]
    assert model.get_text_embedding_batch(batch) == [vec(t) for t in batch]
    # Each distinct text of a batch is requested once.
    assert emulator.stats.inputs == {
        "cancel my order": 1,
        "refund please": 1,
        "a": 1,
        "b": 1,
        "c": 1,
    }
    assert model.usage.requests == 5


async def test_async_methods(make_model: MakeModel, emulator: Emulator) -> None:
    model = make_model()
    assert await model.aget_query_embedding("cancel my order") == vec("cancel my order")
    assert await model.aget_text_embedding("refund please") == vec("refund please")
    batch = ["b", "a", "c", "a", "b"]
    assert await model.aget_text_embedding_batch(batch) == [vec(t) for t in batch]
    assert emulator.stats.inputs == {
        "cancel my order": 1,
        "refund please": 1,
        "a": 1,
        "b": 1,
        "c": 1,
    }
    assert model.usage.requests == 5
    await model.aclose()


def test_repeated_texts_get_equal_but_separate_vectors(make_model: MakeModel) -> None:
    first, second = make_model().get_text_embedding_batch(["same", "same"])
    assert first == second == vec("same")
    first[0] = 42.0  # LlamaIndex stores vectors on nodes; one node's edit must not leak
    assert second == vec("same")


def test_an_empty_batch_sends_nothing(make_model: MakeModel, emulator: Emulator) -> None:
    model = make_model()
    assert model.get_text_embedding_batch([]) == []
    assert asyncio.run(model.aget_text_embedding_batch([])) == []
    assert emulator.stats.requests == 0


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [("", ValueError, "empty"), ("  \n", ValueError, "whitespace"), (7, TypeError, "int")],
)
def test_bad_input_is_rejected_with_its_index_before_any_request(
    make_model: MakeModel, emulator: Emulator, bad: Any, error: type[Exception], message: str
) -> None:
    # The bad text sits in the third batch of 4: the index is its index in the whole call,
    # and not even the first batch may be sent.
    model = make_model(embed_batch_size=4)
    batch: list[Any] = [*texts("ok", 9), bad, "after"]
    with pytest.raises(error, match=rf"texts\[9\].*{message}|texts\[9\] must be a str"):
        model.get_text_embedding_batch(batch)
    with pytest.raises(error, match=r"texts\[9\]"):
        asyncio.run(model.aget_text_embedding_batch(batch))
    with pytest.raises(error):
        model.get_query_embedding(bad)
    with pytest.raises(error):
        asyncio.run(model.aget_text_embedding(bad))
    assert emulator.stats.requests == 0


def test_a_failed_text_keeps_the_vectors_that_arrived(
    make_model: MakeModel, emulator: Emulator
) -> None:
    emulator.configure(fault="500", fault_every=3)
    model = make_model(max_retries=0, max_concurrency=1)
    with pytest.raises(BatchEmbeddingError) as caught:
        model.get_text_embedding_batch(["a", "b", "c", "d"])
    kept = caught.value.embeddings
    assert caught.value.failed_indices == [2]
    assert kept == [vec("a"), vec("b"), None, vec("d")]


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_failing_batch_keeps_the_other_batches_vectors(
    make_model: MakeModel, emulator: Emulator, face: str
) -> None:
    # Ten texts in LlamaIndex batches of four; the seventh request fails, with no retry.
    # The error is indexed by the whole call and holds the nine other vectors.
    emulator.configure(fault="500", fault_every=7)
    model = make_model(max_retries=0, max_concurrency=1, embed_batch_size=4)
    batch = texts("parts", 10)

    def embed() -> object:
        if face == "sync":
            return model.get_text_embedding_batch(batch)
        return asyncio.run(model.aget_text_embedding_batch(batch))

    with pytest.raises(BatchEmbeddingError) as caught:
        embed()
    error = caught.value
    if face == "sync":  # one request at a time, in input order: the seventh text
        assert error.failed_indices == [6]
    (failed,) = error.failed_indices
    assert error.embeddings == [None if i == failed else vec(t) for i, t in enumerate(batch)]
    assert emulator.stats.requests == 10  # nothing skipped, nothing paid for twice


def test_a_refused_key_stops_the_batches_still_to_come(
    make_model: MakeModel, emulator: Emulator
) -> None:
    emulator.configure(api_key="the-right-key")
    model = make_model(api_key="a-wrong-key", embed_batch_size=2)
    with pytest.raises(AuthenticationError):
        model.get_text_embedding_batch(texts("refused", 8))
    assert emulator.stats.requests <= 2  # the first batch only


# -- concurrency ------------------------------------------------------------------------------


def test_the_default_batch_size_keeps_every_slot_busy(
    make_model: MakeModel, emulator: Emulator
) -> None:
    emulator.configure(latency=0.05)
    model = make_model(max_concurrency=4)
    batch = texts("busy", 24)
    assert model.get_text_embedding_batch(batch) == [vec(t) for t in batch]
    assert 3 <= emulator.stats.peak_in_flight <= 4

    # What the default avoids: LlamaIndex waits for each batch, so two texts per batch can
    # never have more than two requests in flight.
    emulator.reset(latency=0.05)
    small = make_model(max_concurrency=4, embed_batch_size=2)
    assert small.get_text_embedding_batch(batch) == [vec(t) for t in batch]
    assert emulator.stats.peak_in_flight <= 2


async def test_num_workers_and_gathered_batches_share_the_bound(
    make_model: MakeModel, emulator: Emulator
) -> None:
    emulator.configure(latency=0.03)
    # 40 texts in 8 batches of 5, 4 batches at once, each batch wanting 3 requests in flight:
    # without one bound per instance, up to 12 requests would be in flight.
    model = make_model(max_concurrency=3, embed_batch_size=5, num_workers=4)
    batch = texts("gathered", 40)
    assert await model.aget_text_embedding_batch(batch) == [vec(t) for t in batch]
    assert 2 <= emulator.stats.peak_in_flight <= 3
    assert emulator.stats.requests == 40

    # Several callers at once on the same instance (e.g. retrievers in one event loop).
    emulator.reset(latency=0.03)
    model.num_workers = None  # plain asyncio.gather of every batch
    results = await asyncio.gather(
        model.aget_text_embedding_batch(texts("north", 12)),
        model.aget_text_embedding_batch(texts("south", 12)),
        model.aget_query_embedding("alone"),
    )
    assert list(results) == [
        [vec(t) for t in texts("north", 12)],
        [vec(t) for t in texts("south", 12)],
        vec("alone"),
    ]
    assert 2 <= emulator.stats.peak_in_flight <= 3
    await model.aclose()


def test_changing_max_concurrency_after_use_takes_effect(
    make_model: MakeModel, emulator: Emulator
) -> None:
    emulator.configure(latency=0.03)
    model = make_model(max_concurrency=8)
    model.get_text_embedding_batch(texts("wide", 16))
    emulator.reset(latency=0.03)
    model.max_concurrency = 2
    model.get_text_embedding_batch(texts("narrow", 16))
    asyncio.run(model.aget_text_embedding_batch(texts("narrow async", 16)))
    assert emulator.stats.peak_in_flight <= 2
    assert model.usage.requests == 48  # the replaced client's requests still count


# -- event loops ------------------------------------------------------------------------------


def test_the_async_methods_work_across_fresh_event_loops(
    make_model: MakeModel, emulator: Emulator
) -> None:
    model = make_model(max_concurrency=2)
    assert asyncio.run(model.aget_query_embedding("loop one")) == vec("loop one")
    assert asyncio.run(model.aget_text_embedding_batch(["loop", "two"])) == [
        vec("loop"),
        vec("two"),
    ]

    async def inside_a_running_loop() -> list[float]:
        # What LlamaIndex's asyncio_run does when a loop is already running (notebooks):
        # a new loop in a worker thread, while this loop stays alive.
        return await asyncio.to_thread(asyncio.run, model.aget_text_embedding("loop three"))

    assert asyncio.run(inside_a_running_loop()) == vec("loop three")
    assert emulator.stats.by_status == {200: 4}


# -- BaseEmbedding keywords -------------------------------------------------------------------


class RecordingLimiter(BaseRateLimiter):
    """Grants every permit at once and notes how many requests had reached the server."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.seen: list[int] = []

    def acquire(self, num_tokens: int = 0) -> None:
        self.seen.append(self.emulator.stats.requests)

    async def async_acquire(self, num_tokens: int = 0) -> None:
        self.seen.append(self.emulator.stats.requests)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_rate_limiter_is_charged_once_per_request_as_they_go(
    make_model: MakeModel, emulator: Emulator, mode: str
) -> None:
    limiter = RecordingLimiter(emulator)
    model = make_model(max_concurrency=3, rate_limiter=limiter)
    batch = [*texts("limited", 10), "limited message 0"]  # 10 distinct texts: 10 requests
    if mode == "sync":
        result = model.get_text_embedding_batch(batch)
    else:
        result = asyncio.run(model.aget_text_embedding_batch(batch))
    assert result == [vec(t) for t in batch]
    assert emulator.stats.requests == 10
    assert len(limiter.seen) == 10
    # Paced, not all taken up front: permit k is taken once the requests of the slices of
    # max_concurrency before it have been sent.
    assert all(seen >= (k // 3) * 3 for k, seen in enumerate(limiter.seen))
    assert limiter.seen[-1] >= 9


def test_a_rejected_key_stops_a_rate_limited_batch(
    make_model: MakeModel, emulator: Emulator
) -> None:
    emulator.configure(api_key=TEST_KEY)
    limiter = RecordingLimiter(emulator)
    model = make_model(api_key="wrong-key", max_concurrency=2, rate_limiter=limiter)
    with pytest.raises(AuthenticationError):
        model.get_text_embedding_batch(texts("denied", 8))
    assert emulator.stats.requests <= 2
    assert len(limiter.seen) <= 2


def test_the_embeddings_cache_saves_requests(make_model: MakeModel, emulator: Emulator) -> None:
    model = make_model(embeddings_cache=SimpleKVStore())
    batch = ["cached one", "cached two"]
    assert model.get_text_embedding_batch(batch) == [vec(t) for t in batch]
    assert model.get_text_embedding_batch([*batch, "new"]) == [vec(t) for t in [*batch, "new"]]
    assert asyncio.run(model.aget_text_embedding_batch(batch)) == [vec(t) for t in batch]
    assert model.get_query_embedding("cached one") == vec("cached one")
    assert emulator.stats.inputs == {"cached one": 1, "cached two": 1, "new": 1}


def test_callback_events_carry_the_chunks_and_never_the_key(make_model: MakeModel) -> None:
    debug = LlamaDebugHandler()
    model = make_model(
        api_key="sk-callback-secret", embed_batch_size=2, callback_manager=CallbackManager([debug])
    )
    model.get_text_embedding_batch(["one", "two", "three"])
    model.get_query_embedding("query")
    pairs = debug.get_event_pairs(CBEventType.EMBEDDING)
    assert len(pairs) == 3  # two batches and one query
    start, end = pairs[0]
    assert start.payload is not None
    assert end.payload is not None
    serialized = start.payload[EventPayload.SERIALIZED]
    assert serialized["class_name"] == "PhosphoEmbedding"
    assert end.payload[EventPayload.CHUNKS] == ["one", "two"]
    assert end.payload[EventPayload.EMBEDDINGS] == [vec("one"), vec("two")]
    for start, end in pairs:
        assert "sk-callback-secret" not in repr(start.payload) + repr(end.payload)


class StartEvents(BaseEventHandler):
    """Collects ``EmbeddingStartEvent``s."""

    events: list[EmbeddingStartEvent] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, EmbeddingStartEvent):
            self.events.append(event)


def test_instrumentation_events_never_carry_the_key(make_model: MakeModel) -> None:
    handler = StartEvents()
    dispatcher = get_dispatcher()  # the root: every event reaches it
    dispatcher.add_event_handler(handler)
    try:
        model = make_model(api_key="sk-instrumented-secret")
        model.get_query_embedding("query")
        model.get_text_embedding_batch(["a", "b"])
        asyncio.run(model.aget_text_embedding_batch(["c"]))
    finally:
        dispatcher.event_handlers.remove(handler)
    assert len(handler.events) == 3
    for event in handler.events:
        assert event.model_dict["class_name"] == "PhosphoEmbedding"
        dumped = event.model_dump_json() + repr(event.model_dict)
        assert "sk-instrumented-secret" not in dumped
        assert "api_key" not in event.model_dict


def test_a_lone_string_is_refused_not_embedded_letter_by_letter(
    make_model: MakeModel, emulator: Emulator
) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        make_model().get_text_embedding_batch("hello")  # type: ignore[arg-type]
    assert emulator.stats.requests == 0


async def test_a_closed_model_stays_usable(make_model: MakeModel, emulator: Emulator) -> None:
    model = make_model()
    assert await model.aget_text_embedding("before") == vec("before")
    await model.aclose()
    assert await model.aget_text_embedding("after aclose") == vec("after aclose")
    model.close()
    assert await asyncio.to_thread(model.get_text_embedding, "after close") == vec("after close")
    assert model.usage.requests == 3  # closing keeps the count
    await model.aclose()


def test_show_progress_draws_a_bar_per_call(
    make_model: MakeModel, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_model(embed_batch_size=2)
    batch = texts("progress", 5)  # three LlamaIndex batches
    assert model.get_text_embedding_batch(batch, show_progress=True) == [vec(t) for t in batch]
    sync_bar = capsys.readouterr().err
    assert "Generating embeddings" in sync_bar
    assert "3/3" in sync_bar
    vectors = asyncio.run(model.aget_text_embedding_batch(batch, show_progress=True))
    assert vectors == [vec(t) for t in batch]
    async_bar = capsys.readouterr().err
    assert "Generating embeddings" in async_bar
    assert "3/3" in async_bar
