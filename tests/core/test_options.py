"""`ClientOptions`: one frozen value resolves arguments, environment and defaults, and is the
one list of settings that the clients, the adapters, the CLI and the docs agree on."""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from langchain_phospho import PhosphoEmbeddings
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import AsyncPhosphoClient, ClientOptions, PhosphoClient, RetryPolicy
from phospho_embed.cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_keywords_are_shorthand_for_an_options_object() -> None:
    options = ClientOptions(api_key="k", max_concurrency=3, timeout=5)
    assert PhosphoClient(options).options == options
    assert PhosphoClient(api_key="k", max_concurrency=3, timeout=5).options == options
    # Keywords apply on top of a shared object, which stays as it was.
    wider = AsyncPhosphoClient(options, max_concurrency=8).options
    assert (wider.max_concurrency, wider.timeout, options.max_concurrency) == (8, 5.0, 3)


def test_an_unknown_setting_is_refused_with_the_closest_name() -> None:
    with pytest.raises(
        TypeError, match="unknown client setting 'max_concurency'; did you mean 'max_concurrency'"
    ):
        PhosphoClient(max_concurency=4)
    with pytest.raises(TypeError, match="options must be a ClientOptions"):
        PhosphoClient("sk-a-key-passed-positionally")  # type: ignore[arg-type]


def test_the_environment_is_read_once_when_the_options_are_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PHOSPHO_API_KEY", "from-env")
    monkeypatch.setenv("PHOSPHO_BASE_URL", "http://127.0.0.1:8000/v2/")
    options = ClientOptions()
    monkeypatch.setenv("PHOSPHO_BASE_URL", "http://127.0.0.1:9999/v2")
    assert options.base_url == "http://127.0.0.1:8000/v2"
    assert options.require_api_key() == "from-env"
    assert options.replace(timeout=3).base_url == "http://127.0.0.1:8000/v2"  # kept


def test_options_compare_by_value_and_never_show_or_pickle_the_key() -> None:
    a = ClientOptions(api_key="sk-secret-one", retry_policy=RetryPolicy(initial_delay=1))
    assert a == ClientOptions(api_key="sk-secret-one", retry_policy=RetryPolicy(initial_delay=1))
    assert a != a.replace(api_key="sk-secret-two")
    assert hash(a) == hash(a.replace())
    assert "sk-secret" not in repr(a) + str(a)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.timeout = 1.0  # type: ignore[misc]


def test_from_attributes_reads_same_named_fields_and_unwraps_secrets() -> None:
    class Fields:
        api_key = SecretStr("sk-from-a-field")
        model_name = "intent-embed"
        max_concurrency = 7

    options = ClientOptions.from_attributes(Fields(), renamed={"model": "model_name"})
    assert options.require_api_key() == "sk-from-a-field"
    assert (options.max_concurrency, options.timeout) == (7, 60.0)


def test_every_setting_with_a_flag_is_a_cli_option_with_its_default() -> None:
    embed = build_parser()._subparsers._group_actions[0].choices["embed"]  # type: ignore[union-attr,index]
    actions = {a.dest: a for a in embed._actions}
    for spec in dataclasses.fields(ClientOptions):
        if spec.metadata["flag"] is None:
            continue
        action = actions[spec.name]
        assert spec.metadata["flag"] in action.option_strings
        if spec.metadata["env"] is None:
            assert action.default == spec.default


def _table(page: str, heading: str) -> dict[str, list[str]]:
    """The first table after ``heading`` on a docs page: first column -> the other cells."""
    text = (DOCS / page).read_text()
    section = text[text.index(heading) :]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|---"))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def _shown(value: Any) -> str:
    """How the docs tables write a default."""
    if isinstance(value, RetryPolicy):
        return "`RetryPolicy()`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value!r}`"


def test_the_core_settings_table_is_the_options_object() -> None:
    rows = _table("installation.md", "## The core clients")
    for spec in dataclasses.fields(ClientOptions):
        env, default, _ = rows[spec.name]
        assert env == (f"`{spec.metadata['env']}`" if spec.metadata["env"] else ""), spec.name
        if spec.metadata["env"] is None:
            assert default == _shown(ClientOptions.default(spec.name)), spec.name
    assert set(rows) - set(ClientOptions.names()) == {"http_client"}


@pytest.mark.parametrize(
    ("page_heading", "adapter", "renamed"),
    [
        ("## LangChain: `PhosphoEmbeddings`", PhosphoEmbeddings, {}),
        ("## LlamaIndex: `PhosphoEmbedding`", PhosphoEmbedding, {"model": "model_name"}),
    ],
)
def test_each_adapter_declares_every_setting_with_the_cores_default(
    page_heading: str, adapter: Any, renamed: dict[str, str]
) -> None:
    rows = _table("installation.md", page_heading)
    for name in ClientOptions.names():
        field = renamed.get(name, name)
        assert field in adapter.model_fields, f"{adapter.__name__} lacks {field}"
        assert field in rows, f"the docs table of {adapter.__name__} lacks {field}"
        default = adapter.model_fields[field].get_default(call_default_factory=False)
        if isinstance(default, (bool, int, float, str)):  # not None, nor a factory
            assert default == ClientOptions.default(name), field
            assert rows[field][1] == _shown(default), field
    # The text the table says about the bound matches what the client does.
    assert not re.search(r"per event loop", " ".join(" ".join(r) for r in rows.values()))


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"base_url": "http://"}, "must be the API root"),
        ({"base_url": "https://api.example/v2?x=1"}, "no query or fragment"),
        ({"model": "   "}, "model must be a non-empty string"),
        ({"api_key": "sk-new\nline-inside"}, "a character an HTTP header cannot carry"),
        ({"api_key": "sk-caf\u00e9"}, "a character an HTTP header cannot carry"),
    ],
)
def test_values_a_request_could_not_carry_are_refused_without_showing_the_key(
    settings: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        ClientOptions(**settings)
    assert "sk-" not in str(info.value)


def test_a_key_read_from_a_file_loses_its_trailing_newline() -> None:
    assert ClientOptions(api_key="  sk-from-a-file\n").require_api_key() == "sk-from-a-file"


def test_options_copy_and_convert_to_a_dict_without_pickling_the_key() -> None:
    import copy

    options = ClientOptions(api_key="sk-copied")
    assert copy.deepcopy(options) == options
    assert dataclasses.asdict(options)["api_key"] == options.api_key
