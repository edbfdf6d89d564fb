"""Every Python example of ``docs/`` and ``README.md`` runs, against a local emulator.

One test per Markdown file (its blocks share a namespace, in order); see ``collector.py``
for the conventions (``docs-test`` markers, top-level ``await``, ``test_*`` functions, and
``print(...)  # output`` lines, whose output is checked against the comment).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phospho_embed.emulator import Emulator

from .collector import (
    DocsExampleError,
    ExampleFailure,
    find_claims,
    parse_markdown,
    run_markdown,
)

ROOT = Path(__file__).resolve().parents[2]
TEST_KEY = "docs-test-key-not-secret"


def markdown_files() -> list[Path]:
    """README.md and every page of the site, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _id(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


@pytest.fixture
def framework_globals() -> Iterator[None]:
    """Examples may set process-wide state (LlamaIndex ``Settings``, LangChain's LLM cache,
    logging): put it back so later tests do not inherit it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    llama = _llama_settings()
    saved_llama = dict(vars(llama)) if llama is not None else None
    lc_globals = _langchain_globals()
    saved_lc = (
        [(name, getattr(lc_globals, f"get_{name}")()) for name in _LC_GLOBALS]
        if lc_globals
        else None
    )
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    llama = _llama_settings()
    if llama is not None:
        fields = vars(llama)
        if saved_llama is None:  # imported by the examples: back to its defaults
            saved_llama = {name: None for name in fields if name.startswith("_")}
        fields.update(saved_llama)
    lc_globals = _langchain_globals()
    if lc_globals is not None:
        for name, value in saved_lc or [(name, _LC_DEFAULTS[name]) for name in _LC_GLOBALS]:
            getattr(lc_globals, f"set_{name}")(value)


_LC_GLOBALS = ("llm_cache", "debug", "verbose")
_LC_DEFAULTS: dict[str, Any] = {"llm_cache": None, "debug": False, "verbose": False}


def _llama_settings() -> Any:
    module = sys.modules.get("llama_index.core.settings")
    return getattr(module, "Settings", None)


def _langchain_globals() -> Any:
    return sys.modules.get("langchain_core.globals")


@pytest.fixture
def docs_env(
    semantic_vectors: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    framework_globals: None,
) -> Emulator:
    """What a user with the environment variables set has: a key, a base URL, a fresh cwd,
    and an emulator on semantic vectors (the outputs the pages show are theirs)."""
    phospho_emulator = semantic_vectors
    for name in list(os.environ):
        if name.startswith("PHOSPHO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PHOSPHO_API_KEY", TEST_KEY)
    monkeypatch.setenv("PHOSPHO_BASE_URL", phospho_emulator.base_url)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return phospho_emulator


def run_file(path: Path, emulator: Emulator, tmp_path: Path) -> None:
    """Runs ``path``'s examples, turning a failure into a readable pytest failure."""
    counter = iter(range(1_000_000))

    def fresh_tmp_path() -> Path:
        directory = tmp_path / f"example-test-{next(counter)}"
        directory.mkdir()
        return directory

    def reset() -> None:
        emulator.reset(vectors="semantic")

    def fresh_emulator() -> Emulator:
        reset()
        return emulator

    failure: Exception | None = None
    try:
        report = run_markdown(
            path,
            fixtures={
                "phospho_emulator": fresh_emulator,
                "phospho_emulator_server": lambda: emulator,
                "tmp_path": fresh_tmp_path,
            },
            after_test=reset,
        )
    except ExampleFailure as error:
        failure = error
    except DocsExampleError as error:  # a malformed docs-test marker
        failure = DocsExampleError(f"{_id(path)}: {error}")
    if failure is not None:  # outside the except: no "during handling of" chain in the report
        pytest.fail(str(failure), pytrace=False)
    if report.skipped and not report.ran:  # a page without code blocks simply passes
        reasons = "; ".join(f"line {b.line}: {b.skip}" for b in report.skipped)
        pytest.skip(f"{_id(path)}: every example is marked skip ({reasons})")


@pytest.mark.parametrize("path", markdown_files(), ids=_id)
def test_examples(path: Path, docs_env: Emulator, tmp_path: Path) -> None:
    run_file(path, docs_env, tmp_path)


def test_the_readme_examples_are_collected() -> None:
    """The collector is not silently collecting nothing: the README has runnable examples."""
    blocks = parse_markdown((ROOT / "README.md").read_text(encoding="utf-8"))
    python = [block for block in blocks if block.kind == "python" and block.runnable]
    assert len(python) >= 3
    claims = [claim for block in python for claim in find_claims(block.code)]
    assert len(claims) >= 3  # and the comments of its prints are found as output claims
