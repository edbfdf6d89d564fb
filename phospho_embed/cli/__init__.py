"""The ``phospho-embed`` command line.

Each subcommand is a module of this package: its ``HELP`` and ``DESCRIPTION``, a
``configure(parser)`` that adds its options and a ``run(args)`` that runs it and returns the
exit status. To add a subcommand, write such a module and list it in `COMMANDS`.

Exit statuses: 0 done, 1 some records failed, 2 bad usage or input (nothing sent),
3 stopped part-way (the API refused the key or account, or OUTPUT could not be written),
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from phospho_embed import wire
from phospho_embed._version import __version__
from phospho_embed.cli import classify, demo, discover, embed, serve
from phospho_embed.cli._common import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_STOPPED,
    EXIT_USAGE,
    CLIError,
    CommandParser,
)
from phospho_embed.errors import BatchEmbeddingError, PhosphoError

__all__ = ["COMMANDS", "build_parser", "main"]

#: The subcommands, in the order ``--help`` lists them. Each module has ``HELP``,
#: ``DESCRIPTION`` (and ``EPILOG`` when its help shows examples, kept as written),
#: ``configure(parser)`` adding its options and ``run(args)`` returning the exit status.
COMMANDS: list[ModuleType] = [embed, classify, discover, serve, demo]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``phospho-embed``, with one subparser per module of `COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="phospho-embed",
        description="Embed texts with phospho's intent-embed API, concurrently and "
        "resumably; classify them by intent; discover the intents in unlabelled messages; "
        "serve a local emulator of the API; or run the demo.",
        epilog="Run 'phospho-embed COMMAND --help' for a command's options. "
        "Exit status: 0 done, 1 some texts failed after their retries, 2 bad usage or input, "
        "3 stopped by the API (key, billing) or an unwritable output, 130 interrupted.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="show the version"
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=CommandParser
    )
    subparsers.required = True
    for module in COMMANDS:
        command = subparsers.add_parser(
            module.__name__.rpartition(".")[2],
            help=module.HELP,
            description=module.DESCRIPTION,
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter
            if hasattr(module, "EPILOG")
            else argparse.HelpFormatter,
        )
        module.configure(command)
        command.set_defaults(func=module.run, command_parser=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``phospho-embed`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Errors a user can cause print one line on stderr instead of a traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except CLIError as error:
        _fail(error.message)
        return error.code
    except PhosphoError as error:  # messages never hold the API key (the core's guarantee)
        _fail(f"{type(error).__name__}: {error}")
        # Refused by the API (key, billing) is "stopped"; texts that outlasted their
        # retries, with the others done, are "some records failed".
        stopped_by = error.stopped_by if isinstance(error, BatchEmbeddingError) else None
        refused = wire.is_fatal(error) or stopped_by is not None
        return EXIT_STOPPED if refused else EXIT_FAILURES
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        _fail(f"{error.strerror or error}{where}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    return status


def _fail(message: str) -> None:
    print(f"phospho-embed: error: {message}", file=sys.stderr, flush=True)
