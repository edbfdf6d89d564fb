"""Command line: ``python -m phospho_embed.emulator [options]``.

``add_arguments`` and ``run`` are separate from ``main`` so that another command line (a
``serve`` subcommand) can offer the same options.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from ._semantic import SemanticModelUnavailableError
from ._server import Emulator
from ._settings import FAULTS, EmulatorSettings
from ._vectors import VECTORS, VECTORS_ENV

API_KEY_ENV = "PHOSPHO_EMULATOR_API_KEY"
"""Environment variable read for the required API key when ``--api-key`` is not given."""

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
    """Add the emulator's options (one per ``EmulatorSettings`` field, plus host, port, logs)."""
    defaults = EmulatorSettings(vectors="lexical")  # only the plain defaults are read
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    server.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port to listen on, 0 for any free one (default: %(default)s)",
    )
    server.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default="warning",
        help="server log level (default: %(default)s)",
    )

    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument(
        "--api-key",
        default=None,
        help=f"bearer token requests must carry, else 401 (default: ${API_KEY_ENV}, "
        "or accept any token)",
    )
    behaviour.add_argument(
        "--dimensions",
        type=int,
        default=defaults.dimensions,
        help="length of the vectors (default: %(default)s)",
    )
    behaviour.add_argument(
        "--vectors",
        choices=VECTORS,
        default=None,
        help=f"'semantic' (a small offline embedding model: paraphrases score high), "
        "'lexical' (hashed words: only shared wording scores high) or 'auto' (semantic when "
        f"installed, else lexical) (default: ${VECTORS_ENV}, else auto)",
    )
    behaviour.add_argument(
        "--latency",
        type=float,
        default=defaults.latency,
        help="seconds to wait per request (default: %(default)s)",
    )
    behaviour.add_argument(
        "--jitter",
        type=float,
        default=defaults.jitter,
        help="spread the wait uniformly over latency +/- jitter seconds (default: %(default)s)",
    )
    behaviour.add_argument(
        "--max-in-flight",
        type=int,
        default=defaults.max_in_flight,
        help="requests served at once; more get 429 at once (default: no limit)",
    )
    behaviour.add_argument(
        "--billing-required",
        action="store_true",
        help="answer 402, as for an account without a payment method",
    )

    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--fault",
        default=None,
        metavar="KIND[,KIND...]",
        help=f"failure to inject, one of {', '.join(FAULTS)}: an HTTP status ('429-bare': "
        "without Retry-After), 'drop' (connection closed mid-response), 'malformed' (200 "
        "with a body of the wrong shape) or 'slow' (200 after --slow-latency); several "
        "joined by commas are drawn at random; alone, every request gets it",
    )
    faults.add_argument(
        "--slow-latency",
        type=float,
        default=defaults.slow_latency,
        help="seconds a 'slow' fault waits before answering (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-rate",
        type=float,
        default=defaults.fault_rate,
        help="probability that a request gets the fault (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-every",
        type=int,
        default=defaults.fault_every,
        help="inject the fault into every Nth request (default: %(default)s)",
    )
    faults.add_argument(
        "--retry-after",
        type=float,
        default=defaults.retry_after,
        help="seconds sent as Retry-After with 429 answers (default: no header)",
    )
    faults.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the random jitter and fault rate (default: %(default)s)",
    )


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    """The settings the parsed options ask for (``ValueError`` when they make no sense, or
    when they ask for semantic vectors that are not installed)."""
    if args.fault is None and (args.fault_rate or args.fault_every):
        raise ValueError("--fault-rate and --fault-every need --fault")
    changes: dict[str, Any] = {
        "api_key": args.api_key or os.environ.get(API_KEY_ENV) or None,
        "dimensions": args.dimensions,
        "latency": args.latency,
        "jitter": args.jitter,
        "fault": args.fault,
        "fault_rate": args.fault_rate,
        "fault_every": args.fault_every,
        "retry_after": args.retry_after,
        "slow_latency": args.slow_latency,
        "max_in_flight": args.max_in_flight,
        "billing_required": args.billing_required,
        "seed": args.seed,
    }
    if args.vectors is not None:
        changes["vectors"] = args.vectors
    try:
        return EmulatorSettings(**changes)
    except SemanticModelUnavailableError as error:
        raise ValueError(str(error)) from error


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
