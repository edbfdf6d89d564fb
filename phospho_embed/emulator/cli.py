"""Command line: ``python -m phospho_embed.emulator [options]``.

``add_arguments`` and ``run`` are separate from ``main`` so that another command line (a
``serve`` subcommand) can offer the same options. Besides the server's own (host, port, log
level), there is one option per field of `EmulatorSettings`, generated from the field: adding
a setting adds its option.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

from ._semantic import SemanticModelUnavailableError
from ._server import Emulator
from ._settings import API_KEY_ENV, EmulatorSettings, Option

__all__ = ["API_KEY_ENV", "add_arguments", "build_parser", "main", "run", "settings_from_args"]

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``python -m phospho_embed.emulator``."""
    parser = argparse.ArgumentParser(
        prog=prog or "python -m phospho_embed.emulator",
        description="Serve a local stand-in for phospho's intent-embed API "
        "(POST /v2/embeddings and /v0/embeddings) with deterministic vectors, "
        "and optional latency, faults, and limits.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options: host, port and log level, then one per `EmulatorSettings`
    field (``--fault-rate`` for ``fault_rate``)."""
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    server.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port to listen on, 0 for any free one (default: %(default)s)",
    )
    server.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default="warning",
        help="server log level (default: %(default)s)",
    )
    groups = {name: parser.add_argument_group(name) for name in ("behaviour", "faults")}
    hints = typing.get_type_hints(EmulatorSettings)
    for setting, option in _settings():
        groups[option.group].add_argument(
            "--" + setting.name.replace("_", "-"), **_argument(setting, option, hints[setting.name])
        )


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    """The settings the parsed options ask for (``ValueError`` when they make no sense, or
    when they ask for semantic vectors that are not installed)."""
    if args.fault is None and (args.fault_rate or args.fault_every):
        raise ValueError("--fault-rate and --fault-every need --fault")
    changes: dict[str, Any] = {}
    for setting, option in _settings():
        value = getattr(args, setting.name)
        if option.env and not value:
            value = os.environ.get(option.env) or None
        # None is "not given": the field's own default applies (vectors reads its variable).
        if value is not None:
            changes[setting.name] = value
    try:
        return EmulatorSettings(**changes)
    except SemanticModelUnavailableError as error:
        raise ValueError(str(error)) from error


def _settings() -> Iterator[tuple[dataclasses.Field[Any], Option]]:
    """The fields of `EmulatorSettings` a caller sets, each with its command-line `Option`."""
    for setting in dataclasses.fields(EmulatorSettings):
        if setting.init:
            yield setting, setting.metadata["option"]


def _argument(setting: dataclasses.Field[Any], option: Option, hint: Any) -> dict[str, Any]:
    """``add_argument``'s keywords for ``setting``, whose resolved annotation is ``hint``."""
    # A default made by a factory (vectors reads an environment variable) is left to it.
    default = None if setting.default is dataclasses.MISSING else setting.default
    keywords: dict[str, Any] = {"default": default, "help": option.help}
    if option.metavar:
        keywords["metavar"] = option.metavar
    if hint is bool:
        return {**keywords, "action": "store_true"}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: an X
        (hint,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is typing.Literal:
        return {**keywords, "choices": typing.get_args(hint)}
    return {**keywords, "type": hint}


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Serve as the parsed options say until Ctrl-C or SIGTERM; return the exit status."""
    try:
        settings = settings_from_args(args)
    except ValueError as error:
        parser.error(str(error))  # exits with status 2, like any bad option
    logging.basicConfig(
        level=args.log_level.upper() if args.log_level != "trace" else 5,
        format="%(levelname)s: %(message)s",
    )
    emulator = Emulator(settings)
    stop = threading.Event()
    restore = _on_sigterm(stop.set)
    try:
        try:
            emulator.start(args.host, args.port, log_level=args.log_level, access_log=True)
        except OSError as error:
            print(f"cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
            return 1
        # The first line is the address: scripts (and our benchmarks) read it.
        print(f"phospho emulator listening on {emulator.base_url}", flush=True)
        print(f"vectors: {emulator.vectors_description}", flush=True)
        while not stop.wait(0.2):
            if not emulator.running:
                print("the emulator's server stopped unexpectedly", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop
    finally:
        emulator.stop()
        restore()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m phospho_embed.emulator``; returns the exit status."""
    parser = build_parser()
    return run(parser.parse_args(argv), parser)


def _on_sigterm(callback: Callable[[], None]) -> Callable[[], None]:
    """Route SIGTERM to ``callback`` (main thread only); return a function undoing it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: callback())

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def _port(value: str) -> int:
    """argparse type: a TCP port, 0 to 65535 (0: any free one)."""
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, got {port}")
    return port
