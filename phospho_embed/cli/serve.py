"""``phospho-embed serve``: run the local emulator of the API, with all its options.

The options and the serving loop are the emulator's own (`phospho_embed.emulator.cli`), so
``phospho-embed serve`` and ``python -m phospho_embed.emulator`` cannot drift apart. They are
added only when ``serve`` is used: the emulator imports FastAPI and uvicorn, which are slow
to import and an optional extra.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from phospho_embed.cli._common import EXIT_USAGE, CLIError

if TYPE_CHECKING:
    from phospho_embed.cli._common import Subparsers

_MISSING_EXTRA = "'serve' needs the emulator extra: pip install 'phospho-embed[emulator]' ({error})"


def register(subparsers: Subparsers) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a local emulator of the phospho embeddings API",
        description="Serve a local stand-in for phospho's intent-embed API "
        "(POST /v2/embeddings) with deterministic vectors and optional latency, faults and "
        "limits, until Ctrl-C or SIGTERM. Point clients at the URL it prints, e.g. "
        "PHOSPHO_BASE_URL=http://127.0.0.1:8000/v2.",
    )
    problems: list[str] = []

    def add_emulator_arguments(target: argparse.ArgumentParser) -> None:
        try:
            from phospho_embed.emulator.cli import add_arguments
        except ImportError as error:
            problems.append(str(error))
            return
        add_arguments(target)

    parser.defer_arguments(add_emulator_arguments)

    def handle(args: argparse.Namespace) -> int:
        if problems:
            raise CLIError(_MISSING_EXTRA.format(error=problems[0]), EXIT_USAGE)
        from phospho_embed.emulator.cli import run

        return run(args, parser)

    parser.set_defaults(func=handle)
