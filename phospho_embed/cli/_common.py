"""What the subcommands share: exit codes, user-facing errors, the client options and client.

Errors a user can cause (a missing file, a bad column, no API key) are raised as `CLIError`
and turned by ``main`` into one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

from phospho_embed import PhosphoClient
from phospho_embed._options import API_KEY_ENV, ClientOptions
from phospho_embed.wire import DEFAULT_BASE_URL

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


def finite_float(value: str) -> float:
    """argparse type: a finite number (``nan`` and ``inf`` compare as nothing useful)."""
    number = float(value)
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


def non_negative_float(value: str) -> float:
    """argparse type: a finite number >= 0."""
    number = finite_float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return number


def positive_float(value: str) -> float:
    """argparse type: a finite number > 0."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return number


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of every subcommand that calls the API (where, who, how hard): one
    per `ClientOptions` setting that has a flag, with its meaning and default from there.

    Defaults are shown as environment variable names, never their values: the help of a
    command must not be a way to print the API key.
    """
    group = parser.add_argument_group("API client")
    for spec in dataclasses.fields(ClientOptions):
        flag = spec.metadata["flag"]
        if flag is None:
            continue
        env = spec.metadata["env"]
        if env is not None:
            default = f"${env}" + (
                f", else {_ENV_FALLBACK[spec.name]}" if spec.name in _ENV_FALLBACK else ""
            )
            group.add_argument(
                flag,
                dest=spec.name,
                metavar=spec.metadata["metavar"],
                help=f"{spec.metadata['doc']} (default: {default}){_FLAG_NOTES.get(spec.name, '')}",
            )
        else:
            group.add_argument(
                flag,
                dest=spec.name,
                type=_ARGUMENT_TYPES[type(spec.default)],
                default=spec.default,
                metavar=spec.metadata["metavar"],
                help=f"{spec.metadata['doc']} (default: %(default)s)",
            )


#: What a flag's help says instead of a default read from the environment.
_ENV_FALLBACK = {"base_url": DEFAULT_BASE_URL, "project_id": "none"}
_FLAG_NOTES = {
    "api_key": "; prefer the variable: command lines end up in shell histories and process lists"
}
#: How a flag's text becomes the setting's value (its range is checked by `ClientOptions`).
_ARGUMENT_TYPES: dict[type, Callable[[str], Any]] = {int: int, float: float, str: str}


def require_api_key(args: argparse.Namespace) -> None:
    """Fail with a clear `CLIError` now if no key is set, before any file is read or touched."""
    # As the client resolves it: an explicit --api-key (even "") wins over the environment.
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    if not key:
        raise CLIError(f"no API key: set the {API_KEY_ENV} environment variable or pass --api-key")


def client_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given by the options of `add_client_arguments`, as keywords that
    `ClientOptions`, `PhosphoClient` and both framework adapters accept."""
    return {name: getattr(args, name) for name in ClientOptions.names() if hasattr(args, name)}


def client_options(args: argparse.Namespace) -> ClientOptions:
    """The `ClientOptions` given by the options of `add_client_arguments`.

    Raises:
        CLIError: a setting out of range (e.g. ``--max-concurrency 0``), or a base URL
            without http://.
    """
    try:
        return ClientOptions(**client_settings(args))
    except (TypeError, ValueError) as error:
        raise CLIError(str(error)) from None


def build_client(args: argparse.Namespace) -> PhosphoClient:
    """A `PhosphoClient` configured by the options of `add_client_arguments`.

    Raises:
        CLIError: a setting the client rejects (e.g. a base URL without http://).
    """
    return PhosphoClient(client_options(args))


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
