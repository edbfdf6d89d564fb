"""How settings travel to Dask workers: pickled without a `Secret`, the key never printed.

No cluster here: these are the carrier's own promises, checked in this process.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

pytest.importorskip("distributed")

from dask.base import tokenize

from phospho_embed import ClientOptions
from phospho_embed.dask import HiddenKey, WorkerSettings
from phospho_embed.errors import MissingAPIKeyError

KEY = "sk-dask-settings-0123456789"


def test_the_key_is_in_no_repr_str_or_token() -> None:
    settings = WorkerSettings.build(8, None, {"api_key": KEY, "base_url": "http://127.0.0.1:9"})
    for shown in (repr(settings), str(settings), repr(settings.key), str(settings.key)):
        assert KEY not in shown
        assert "**********" in shown
    # Dask names tasks from tokens: the key is not hashed into them either, so two keys
    # of equal length give tokens unrelated to their content.
    assert settings.key is not None
    assert settings.key.__dask_tokenize__() != tokenize(KEY)
    assert KEY not in repr(settings.__dask_tokenize__())


def test_settings_pickle_where_client_options_with_a_key_do_not() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(ClientOptions(api_key=KEY))
    settings = WorkerSettings.build(8, "bound", {"api_key": KEY, "max_retries": 1})
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings
    assert tokenize(copy) == tokenize(settings)  # the same tasks after a round trip
    options = copy.client_options()
    assert options.require_api_key() == KEY
    assert options.max_retries == 1
    assert options.max_concurrency == 8


def test_without_a_key_the_worker_reads_its_own_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = WorkerSettings.build(4, None, {})
    assert settings.key is None
    with pytest.raises(MissingAPIKeyError, match="every worker's environment"):
        settings.client_options()
    monkeypatch.setenv("PHOSPHO_API_KEY", "from-the-worker-env")
    assert settings.client_options().require_api_key() == "from-the-worker-env"


def test_bad_settings_fail_on_the_driver() -> None:
    with pytest.raises(TypeError, match="did you mean 'max_retries'"):
        WorkerSettings.build(4, None, {"max_retry": 3})
    with pytest.raises(ValueError, match="max_concurrency"):
        WorkerSettings.build(0, None, {})
    with pytest.raises(ValueError, match="base_url"):
        WorkerSettings.build(4, None, {"base_url": "ftp://x"})
    with pytest.raises(TypeError):
        HiddenKey("")


def test_the_bound_is_named_after_its_size_unless_named() -> None:
    assert WorkerSettings.build(64, None, {}).bound_name == "phospho-embed/64"
    assert WorkerSettings.build(64, "team-a", {}).bound_name == "team-a"


def test_without_the_extra_the_error_names_it() -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "try:\n    import phospho_embed.dask\n"
        "except ImportError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'phospho-embed[dask]'" in done.stdout
    assert "distributed" in done.stdout
