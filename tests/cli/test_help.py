"""``--help`` and ``--version`` of the command and of every subcommand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from phospho_embed import __version__
from phospho_embed.cli import COMMANDS, build_parser, main

CLIENT_FLAGS = [
    "--base-url",
    "--api-key",
    "--project-id",
    "--max-concurrency",
    "--max-retries",
    "--timeout",
]
EMBED_FLAGS = ["--output", "--format", "--field", "--column", "--no-progress", "--dry-run"]
SERVE_FLAGS = ["--host", "--port", "--latency", "--fault", "--fault-every", "--max-in-flight"]


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["--help"], capsys)

    assert "usage: phospho-embed" in out
    for name in ("embed", "serve"):
        assert name in out
    assert "Exit status" in out


def test_every_registered_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    names = [module.__name__.rsplit(".", 1)[1] for module in COMMANDS]
    assert {"embed", "serve"} <= set(names)
    for name in names:
        out = _help([name, "--help"], capsys)
        assert f"usage: phospho-embed {name}" in out
        assert len(out.splitlines()) > 10  # a description and options, not a bare usage line


def test_embed_help_documents_its_options_and_formats(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _help(["embed", "--help"], capsys)

    for flag in EMBED_FLAGS + CLIENT_FLAGS:
        assert flag in out
    for words in (".txt", ".jsonl", ".csv", "index = line number - 1", "Resuming", "exit status"):
        assert words in out


def test_serve_help_lists_the_emulators_options(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["serve", "--help"], capsys)

    for flag in SERVE_FLAGS:
        assert flag in out


def test_help_never_shows_the_api_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOSPHO_API_KEY", "sk-very-secret-value")

    out = _help(["embed", "--help"], capsys)

    assert "$PHOSPHO_API_KEY" in out
    assert "sk-very-secret-value" not in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert _help(["--version"], capsys).strip() == f"phospho-embed {__version__}"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])

    assert exit_info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_module_entry_point_runs_without_loading_the_emulator() -> None:
    # `embed` must not pay for (or need) FastAPI and uvicorn: serve's options load lazily.
    code = (
        "import sys; from phospho_embed.cli import build_parser; "
        "build_parser().parse_args(['embed', 'in.txt', '-o', 'out.jsonl']); "
        "print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "False"]

    help_run = subprocess.run(
        [sys.executable, "-m", "phospho_embed.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_run.returncode == 0
    assert "usage: phospho-embed" in help_run.stdout


def test_parser_parses_serve_options() -> None:
    args = build_parser().parse_args(["serve", "--port", "0", "--latency", "0.5"])

    assert (args.command, args.port, args.latency) == ("serve", 0, 0.5)
