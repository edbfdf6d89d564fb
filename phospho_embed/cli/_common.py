"""What the subcommands share: exit codes, user-facing errors, the client options and client.

Errors a user can cause (a missing file, a bad column, no API key) are raised as `CLIError`
and turned by ``main`` into one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from phospho_embed import PhosphoClient
from phospho_embed._settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    PROJECT_ID_ENV,
)

EXIT_OK = 0
"""Everything asked for was done."""
EXIT_FAILURES = 1
"""The run finished, but some texts failed after their retries (`embed` lists them)."""
EXIT_USAGE = 2
"""Bad arguments, an unreadable file, a missing API key: nothing was sent (argparse's code)."""
EXIT_STOPPED = 3
"""The run stopped part-way: the API refused the key or the account (401/402/403), or OUTPUT
could not be written. What was written before stays."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT, the shell convention)."""


class CLIError(Exception):
    """An error the user can fix; ``main`` prints ``message`` on one line and exits ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


Handler = Callable[[argparse.Namespace], int]
"""What a subcommand stores as ``func``: it runs the parsed command and returns the status."""


class CommandParser(argparse.ArgumentParser):
    """The parser class of every subcommand; it can add some arguments only when used.

    ``serve`` takes its options from the emulator, which imports FastAPI and uvicorn (half a
    second, and an optional extra): deferring them keeps ``embed`` and ``--help`` fast and
    working without that extra.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def defer_arguments(self, add: Callable[[argparse.ArgumentParser], None]) -> None:
        """Call ``add(self)`` just before this parser parses or formats its help."""
        self._deferred.append(add)

    def _load_deferred(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        """Add the deferred arguments, then parse as usual."""
        self._load_deferred()
        return super().parse_known_args(*args, **kwargs)

    def format_help(self) -> str:
        """Add the deferred arguments, then format the help as usual."""
        self._load_deferred()
        return super().format_help()

    def format_usage(self) -> str:
        """Add the deferred arguments, then format the usage line as usual."""
        self._load_deferred()
        return super().format_usage()


if TYPE_CHECKING:
    #: What ``register(subparsers)`` receives: ``add_parser`` makes `CommandParser` objects.
    Subparsers: TypeAlias = argparse._SubParsersAction[CommandParser]


def positive_int(value: str) -> int:
    """argparse type: an integer >= 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def non_negative_int(value: str) -> int:
    """argparse type: an integer >= 0."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {number}")
    return number


def positive_float(value: str) -> float:
    """argparse type: a finite number > 0."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return number


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of every subcommand that calls the API (where, who, how hard).

    Defaults are shown as environment variable names, never their values: the help of a
    command must not be a way to print the API key.
    """
    group = parser.add_argument_group("API client")
    group.add_argument(
        "--base-url",
        metavar="URL",
        help=f"API base URL, e.g. an emulator's http://127.0.0.1:8000/v2 "
        f"(default: ${BASE_URL_ENV}, else https://api.phospho.ai/v2)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"phospho API key (default: ${API_KEY_ENV}; prefer the variable: "
        "command lines end up in shell histories and process lists)",
    )
    group.add_argument(
        "--project-id",
        metavar="ID",
        help=f"phospho project to link the embeddings to (default: ${PROJECT_ID_ENV}, else none)",
    )
    group.add_argument(
        "--max-concurrency",
        type=positive_int,
        default=DEFAULT_MAX_CONCURRENCY,
        metavar="N",
        help="requests in flight at once (default: %(default)s)",
    )
    group.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=DEFAULT_MAX_RETRIES,
        metavar="N",
        help="retries per text after transient failures: timeouts, 429, 5xx (default: %(default)s)",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="timeout of each attempt (default: %(default)s)",
    )


def require_api_key(args: argparse.Namespace) -> None:
    """Fail with a clear `CLIError` now if no key is set, before any file is read or touched."""
    # As the client resolves it: an explicit --api-key (even "") wins over the environment.
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    if not key:
        raise CLIError(f"no API key: set the {API_KEY_ENV} environment variable or pass --api-key")


def client_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The client settings given by the options of `add_client_arguments`, as keywords that
    `PhosphoClient` and both framework adapters accept."""
    return {
        "api_key": args.api_key,
        "base_url": args.base_url,
        "project_id": args.project_id,
        "timeout": args.timeout,
        "max_retries": args.max_retries,
        "max_concurrency": args.max_concurrency,
    }


def build_client(args: argparse.Namespace) -> PhosphoClient:
    """A `PhosphoClient` configured by the options of `add_client_arguments`.

    Raises:
        CLIError: a setting the client rejects (e.g. a base URL without http://).
    """
    try:
        return PhosphoClient(**client_settings(args))
    except (TypeError, ValueError) as error:
        raise CLIError(str(error)) from None
