"""The model as a LlamaIndex component: fields, settings precedence, serialization and
pickling, the namespace import. Every vector is fetched from the emulator over HTTP."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path

import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import ValidationError

import llama_index_phospho
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import AuthenticationError, MissingAPIKeyError, RetryPolicy
from phospho_embed.emulator import Emulator
from tests.llama_index.conftest import TEST_KEY, MakeModel, vec

ROOT = Path(__file__).resolve().parents[2]


def test_is_a_llama_index_embedding_with_its_own_class_name(make_model: MakeModel) -> None:
    model = make_model()
    assert isinstance(model, BaseEmbedding)
    assert PhosphoEmbedding.class_name() == "PhosphoEmbedding"
    assert model.to_dict()["class_name"] == "PhosphoEmbedding"
    assert model.get_query_embedding("where is my parcel?") == vec("where is my parcel?")


def test_the_namespace_import_is_the_same_class() -> None:
    from llama_index.embeddings.phospho import PhosphoEmbedding as FromNamespace

    assert FromNamespace is PhosphoEmbedding
    # Namespace packages merge with llama-index-core's only without these files; one stray
    # __init__.py would shadow the whole of llama_index.
    assert not (ROOT / "llama_index" / "__init__.py").exists()
    assert not (ROOT / "llama_index" / "embeddings" / "__init__.py").exists()
    import llama_index.core

    assert llama_index.core.__file__ is not None


def test_defaults() -> None:
    model = PhosphoEmbedding()
    assert model.model_name == "intent-embed"
    assert (model.api_key, model.base_url, model.project_id) == (None, None, None)
    assert (model.timeout, model.max_retries, model.max_concurrency) == (60.0, 4, 16)
    assert model.embed_batch_size == 256  # 16 texts per request in flight


def test_default_batch_size_follows_max_concurrency() -> None:
    assert PhosphoEmbedding(max_concurrency=4).embed_batch_size == 64
    assert PhosphoEmbedding(max_concurrency=500).embed_batch_size == 2048  # LlamaIndex's cap
    assert PhosphoEmbedding(max_concurrency=4, embed_batch_size=3).embed_batch_size == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout", 0),
        ("timeout", float("nan")),
        ("max_retries", -1),
        ("max_concurrency", 0),
        ("max_concurrency", True),
        ("base_url", "api.phospho.ai/v2"),
        ("embed_batch_size", 0),
    ],
)
def test_bad_settings_fail_at_construction(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        PhosphoEmbedding(**{field: value})  # type: ignore[arg-type]


def test_an_argument_beats_the_environment(
    make_model: MakeModel, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.configure(api_key=TEST_KEY)
    monkeypatch.setenv("PHOSPHO_API_KEY", "wrong-key")
    monkeypatch.setenv("PHOSPHO_BASE_URL", "http://127.0.0.1:9/v2")  # nothing listens there
    model = make_model(api_key=TEST_KEY, base_url=emulator.base_url)
    assert model.get_text_embedding("hello") == vec("hello")
    assert emulator.stats.by_status == {200: 1}


def test_the_environment_beats_the_default(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.configure(api_key=TEST_KEY)
    monkeypatch.setenv("PHOSPHO_API_KEY", TEST_KEY)
    monkeypatch.setenv("PHOSPHO_BASE_URL", emulator.base_url)
    model = PhosphoEmbedding()
    assert model.get_text_embedding("from the environment") == vec("from the environment")
    assert emulator.stats.by_status == {200: 1}
    model.close()


def test_a_missing_key_fails_before_any_request(emulator: Emulator) -> None:
    model = PhosphoEmbedding(base_url=emulator.base_url)
    with pytest.raises(MissingAPIKeyError, match="PHOSPHO_API_KEY"):
        model.get_text_embedding_batch(["a", "b"])
    with pytest.raises(MissingAPIKeyError):
        asyncio.run(model.aget_query_embedding("a"))
    assert emulator.stats.requests == 0


def test_changing_a_field_after_use_takes_effect(make_model: MakeModel, emulator: Emulator) -> None:
    emulator.configure(api_key=TEST_KEY)
    model = make_model(api_key="wrong-key")
    with pytest.raises(AuthenticationError):
        model.get_text_embedding("first")
    # Assignment is not validated by BaseEmbedding, so a plain str is what users store.
    model.api_key = TEST_KEY  # type: ignore[assignment]
    assert model.get_text_embedding("second") == vec("second")
    assert asyncio.run(model.aget_text_embedding("third")) == vec("third")


# -- serialization ----------------------------------------------------------------------------


def test_to_dict_and_to_json_never_hold_the_key(make_model: MakeModel) -> None:
    model = make_model(api_key="sk-very-secret", project_id="proj-1", max_concurrency=3)
    data = model.to_dict()
    assert "api_key" not in data
    assert "sk-very-secret" not in model.to_json()
    assert "sk-very-secret" not in repr(model) + str(model)
    assert data["project_id"] == "proj-1"
    assert data["max_concurrency"] == 3
    assert json.loads(model.to_json())["base_url"] == model.base_url


def test_from_dict_rebuilds_the_model_with_the_key_from_the_environment(
    make_model: MakeModel, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.configure(api_key=TEST_KEY)
    original = make_model(max_concurrency=3, timeout=12.5, max_retries=1)
    monkeypatch.setenv("PHOSPHO_API_KEY", TEST_KEY)
    for rebuilt in (
        PhosphoEmbedding.from_dict(original.to_dict()),
        PhosphoEmbedding.from_json(original.to_json()),
    ):
        assert isinstance(rebuilt, PhosphoEmbedding)
        assert rebuilt.to_dict() == original.to_dict()
        assert rebuilt.api_key is None  # not serialized: read from PHOSPHO_API_KEY
        assert rebuilt.get_text_embedding("rebuilt") == vec("rebuilt")
        rebuilt.close()


def test_a_pickled_model_works_before_and_after_use(
    make_model: MakeModel, emulator: Emulator
) -> None:
    emulator.configure(api_key=TEST_KEY)  # the key is explicit, not in the environment
    model = make_model(max_concurrency=3)
    fresh = pickle.loads(pickle.dumps(model))
    assert fresh.get_text_embedding_batch(["one", "two"]) == [vec("one"), vec("two")]

    # Used: live sync and async clients (threads, pools, a loop-bound semaphore) exist now.
    model.get_text_embedding_batch(["three", "four"])
    asyncio.run(model.aget_text_embedding_batch(["five"]))
    used = pickle.loads(pickle.dumps(model))
    assert used.to_dict() == model.to_dict()
    assert used.get_query_embedding("six") == vec("six")
    assert asyncio.run(used.aget_query_embedding("seven")) == vec("seven")
    # The copy has clients of its own: it counts only its own requests.
    assert used.usage.requests == 2
    assert emulator.stats.by_status == {200: 7}
    fresh.close()
    used.close()


def test_pickling_logs_no_warning(make_model: MakeModel, caplog: pytest.LogCaptureFixture) -> None:
    model = make_model()
    model.get_text_embedding("warm up")
    pickle.dumps(model)
    # LlamaIndex logs "Removing unpickleable private attribute" for private state it cannot
    # pickle; the adapter's clients pickle as an empty holder instead.
    assert not [r for r in caplog.records if "unpickleable" in r.getMessage()]


def test_the_package_exports_its_version() -> None:
    assert llama_index_phospho.__version__


def test_throttling_and_backoff_settings_reach_the_core(
    make_model: MakeModel, emulator: Emulator
) -> None:
    # Every second request is throttled (retried until it lands on an odd one); the model
    # keeps its bound fixed.
    emulator.configure(fault="429", fault_every=2, retry_after=0)
    fast = RetryPolicy(initial_delay=0.001, max_delay=0.01)
    model = make_model(
        max_concurrency=4, max_retries=50, adaptive_concurrency=False, retry_policy=fast
    )
    texts = [f"text {i}" for i in range(8)]
    assert model.get_text_embedding_batch(texts) == [vec(t) for t in texts]
    assert emulator.stats.by_status[429] > 0
    # Fixed: still four after the 429s (an adaptive bound would have come down).
    assert model._sync_client().concurrency_limit == 4
    assert model._sync_client().options.retry_policy == fast
    assert "retry_policy" not in model.to_dict()  # not serialized, like an injected client


def test_unknown_arguments_are_refused_not_dropped() -> None:
    # pydantic would drop them silently: an OpenAIEmbedding's api_base= would then send the
    # texts and the key to the default endpoint.
    with pytest.raises(TypeError, match=r"'api_base' \(use 'base_url'\)"):
        PhosphoEmbedding(api_key=TEST_KEY, api_base="http://127.0.0.1:9/v2")
    with pytest.raises(TypeError, match=r"'dimensions', 'model' \(use 'model_name'\)"):
        PhosphoEmbedding(api_key=TEST_KEY, model="intent-embed", dimensions=8)


def test_the_default_batch_size_follows_a_max_concurrency_assigned_later(
    make_model: MakeModel,
) -> None:
    model = make_model(max_concurrency=4)
    model.max_concurrency = 8
    assert model.get_text_embedding_batch(["a"]) == [vec("a")]
    assert model.embed_batch_size == 128
    chosen = make_model(max_concurrency=4, embed_batch_size=3)
    chosen.max_concurrency = 8
    chosen.get_text_embedding_batch(["a"])
    assert chosen.embed_batch_size == 3  # a size chosen by hand stays
    chosen.embed_batch_size = 5
    chosen.max_concurrency = 2
    chosen.get_text_embedding_batch(["a"])
    assert chosen.embed_batch_size == 5
