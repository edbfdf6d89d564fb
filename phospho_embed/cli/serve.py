"""``phospho-embed serve``: run the local emulator of the API, with all its options.

The options and the serving loop are the emulator's own (`phospho_embed.emulator.cli`), so
``phospho-embed serve`` and ``python -m phospho_embed.emulator`` cannot drift apart. They are
added only when ``serve`` is used: the emulator imports FastAPI and uvicorn, which are slow
to import and an optional extra; without that extra, ``serve`` says which one to install.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from phospho_embed.cli._common import EXIT_USAGE

if TYPE_CHECKING:
    from phospho_embed.cli._common import Subparsers

# What this distribution ships: a module of these missing is a bug, not a missing extra.
_OWN_PACKAGES = ("phospho_embed", "phospho_embed_demo", "langchain_phospho", "llama_index_phospho")


def missing_extra(error: ImportError, extra: str) -> str:
    """The one line telling the user to install ``extra``, when ``error`` says a module of
    that extra is not installed; otherwise ``error`` is re-raised, traceback and all."""
    # The emulator raises its own ImportError, naming its extra, from the one that failed.
    reason = error.__cause__ or error
    if not isinstance(reason, ModuleNotFoundError) or (
        reason.name is None or reason.name.partition(".")[0] in _OWN_PACKAGES
    ):
        raise error
    return f'the {extra} extra is missing: pip install "phospho-embed[{extra}]" ({reason})'


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

    def add_emulator_arguments(target: argparse.ArgumentParser) -> None:
        try:
            from phospho_embed.emulator.cli import add_arguments
        except ImportError as error:
            # Now, while parsing: later, argparse would only call its options unrecognized.
            target.exit(EXIT_USAGE, f"{target.prog}: error: {missing_extra(error, 'emulator')}\n")
        add_arguments(target)

    parser.defer_arguments(add_emulator_arguments)

    def handle(args: argparse.Namespace) -> int:
        from phospho_embed.emulator.cli import run

        return run(args, parser)

    parser.set_defaults(func=handle)
