"""``phospho-embed demo``: the main job, end to end, on the emulator unless a key is set.

The demo itself is the `phospho_embed_demo` package, imported only when this command runs:
it uses both framework adapters, which the core never imports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from phospho_embed.cli._common import (
    EXIT_USAGE,
    CLIError,
    CommandParser,
    add_client_arguments,
    client_settings,
    missing_extra,
)

HELP = "classify, route and discover customer-support intents, and compare speeds"
"""The command's line in ``phospho-embed --help``."""
DESCRIPTION = (
    "Classify messages by intent (rejecting out-of-topic ones), route them "
    "with LangChain and LlamaIndex, discover the intents in unlabelled messages (and "
    "those the classifier does not cover yet, with an HTML report), and compare batch "
    "embedding with a one-by-one loop. Without an API key it starts a local emulator "
    "with LLM-like latency."
)
"""What ``phospho-embed demo --help`` says first."""


def configure(parser: CommandParser) -> None:
    """Add the options of ``demo``."""
    parser.add_argument(
        "--latency",
        type=float,
        default=None,
        metavar="SECONDS",
        help="per-request latency of the local emulator, when no API key is set "
        "(default: 0.3, like the LLM-backed API)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write the discovery report, intents.html (default: a new "
        "phospho-embed-demo-* folder in the temporary directory)",
    )
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run the demo on stdout."""
    try:
        from phospho_embed_demo import run as run_demo
    except ImportError as error:
        raise CLIError(missing_extra(error, "demo"), EXIT_USAGE) from error
    return run_demo(
        sys.stdout, latency=args.latency, report_dir=args.report_dir, **client_settings(args)
    )
