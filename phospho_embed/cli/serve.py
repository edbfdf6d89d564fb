"""``phospho-embed serve``: run the local emulator of the API, with all its options.

The options and the serving loop are the emulator's own (`phospho_embed.emulator.cli`), so
``phospho-embed serve`` and ``python -m phospho_embed.emulator`` cannot drift apart. They are
added only when ``serve`` is used: the emulator imports FastAPI and uvicorn, which are slow
to import and an optional extra; without that extra, ``serve`` says which one to install.
"""

from __future__ import annotations

import argparse

from phospho_embed.cli._common import EXIT_USAGE, CommandParser, missing_extra

HELP = "serve a local emulator of the phospho embeddings API"
"""The command's line in ``phospho-embed --help``."""
DESCRIPTION = (
    "Serve a local stand-in for phospho's intent-embed API "
    "(POST /v2/embeddings) with deterministic vectors and optional latency, faults and "
    "limits, until Ctrl-C or SIGTERM. Point clients at the URL it prints, e.g. "
    "PHOSPHO_BASE_URL=http://127.0.0.1:8000/v2."
)
"""What ``phospho-embed serve --help`` says first."""


def configure(parser: CommandParser) -> None:
    """Add the options of ``serve``."""

    def add_emulator_arguments(target: argparse.ArgumentParser) -> None:
        try:
            from phospho_embed.emulator.cli import add_arguments
        except ImportError as error:
            # Now, while parsing: later, argparse would only call its options unrecognized.
            target.exit(EXIT_USAGE, f"{target.prog}: error: {missing_extra(error, 'emulator')}\n")
        add_arguments(target)

    parser.defer_arguments(add_emulator_arguments)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit status."""
    from phospho_embed.emulator.cli import run as serve

    return serve(args, args.command_parser)
