"""``phospho-embed classify --examples FILE TEXT...``: which intent each text expresses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phospho_embed import PhosphoClient, wire
from phospho_embed.cli._common import (
    EXIT_OK,
    CLIError,
    CommandParser,
    add_client_arguments,
    build_client,
    finite_float,
    non_negative_float,
    require_api_key,
)

if TYPE_CHECKING:
    from phospho_embed.intents import IntentClassifier


HELP = "classify texts into intents, or out of topic"
"""The command's line in ``phospho-embed --help``."""
DESCRIPTION = (
    "Classify each TEXT into one of the intents of --examples, or out of "
    "topic when its best intent scores under the threshold. Output: one line per text, "
    "'intent<TAB>score<TAB>text' ('-' as the intent when out of topic), or JSON lines."
)
"""What ``phospho-embed classify --help`` says first."""


def configure(parser: CommandParser) -> None:
    """Add the options of ``classify``."""
    parser.add_argument(
        "texts",
        nargs="+",
        metavar="TEXT",
        help="texts to classify; '-' reads one text per line from standard input",
    )
    parser.add_argument(
        "--examples",
        required=True,
        type=Path,
        metavar="FILE",
        help="a JSON object {intent: [example, ...]} (embedded now), or a classifier saved "
        "with --save or IntentClassifier.save (.npz, no embedding needed)",
    )
    parser.add_argument(
        "--threshold",
        type=finite_float,
        metavar="SCORE",
        help="minimum score of the best intent (default: the saved one, else none)",
    )
    parser.add_argument(
        "--margin",
        type=non_negative_float,
        metavar="GAP",
        help="minimum gap between the best two intents",
    )
    parser.add_argument(
        "--save", type=Path, metavar="FILE", help="save the classifier built from --examples (.npz)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines with every score")
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Classify the texts and print one line per text."""
    require_api_key(args)
    texts = _texts(args.texts)
    with build_client(args) as client:
        classifier = _classifier(args, client)
        if args.threshold is not None:
            classifier.threshold_, classifier.thresholds_ = args.threshold, {}
        if args.margin is not None:
            classifier.margin_ = args.margin
        if args.save is not None:  # with this run's --threshold and --margin
            classifier.save(args.save)
        matches = classifier.classify_vectors(_vectors(args, client, texts, classifier.dimension))
        for text, match in zip(texts, matches, strict=True):
            if args.json:
                record: dict[str, Any] = {
                    "text": text,
                    "intent": match.intent,
                    "score": round(match.score, 6),
                    "margin": round(match.margin, 6),
                    "scores": {name: round(value, 6) for name, value in match.scores.items()},
                }
                print(json.dumps(record, ensure_ascii=False))
            else:
                print(f"{match.intent or '-'}\t{match.score:.4f}\t{text}")
    return EXIT_OK


def _texts(values: list[str]) -> list[str]:
    """The texts to classify, each checked before anything is sent.

    Raises:
        CLIError: a TEXT argument (or a line of standard input) the API cannot embed: empty,
            whitespace only, or holding a NUL character.
    """
    texts: list[str] = []
    for position, value in enumerate(values, 1):
        if value == "-":
            for number, line in enumerate(sys.stdin, 1):
                if line.strip():
                    texts.append(_checked(line.rstrip("\n"), f"line {number} of standard input"))
        else:
            texts.append(_checked(value, f"TEXT {position}"))
    return texts


def _checked(text: str, where: str) -> str:
    try:
        return wire.check_text(text, where)
    except (TypeError, ValueError) as error:
        raise CLIError(f"{error}; nothing was sent") from None


def _vectors(
    args: argparse.Namespace, client: PhosphoClient, texts: list[str], dimension: int
) -> list[list[float]]:
    """The texts' vectors: the first one alone, to check that the API's vectors have the
    classifier's dimension before paying for the others.

    Raises:
        CLIError: they do not (a classifier saved from another model or endpoint).
    """
    if not texts:
        return []
    first = client.embed(texts[0])
    if len(first) != dimension:
        raise CLIError(
            f"--examples {str(args.examples)!r} holds {dimension}-dimensional vectors, but the "
            f"API at {client.options.base_url} returns {len(first)}-dimensional ones (another "
            "model or endpoint?): rebuild the classifier from JSON examples with this API, or "
            "use the API it was built with"
        )
    return [first, *client.embed_many(texts[1:])]


def _classifier(args: argparse.Namespace, client: PhosphoClient) -> IntentClassifier:
    try:
        from phospho_embed.intents import IntentClassifier  # numpy: only for this command
    except ImportError as error:
        raise CLIError(str(error)) from None

    path: Path = args.examples
    if path.suffix == ".npz":
        try:
            return IntentClassifier.load(path, encoder=client)
        except ValueError as error:
            raise CLIError(str(error)) from None
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CLIError(f"{path} is not JSON: {error}") from None
    if not isinstance(examples, dict):
        raise CLIError(f"{path} must hold a JSON object {{intent: [example, ...]}}")
    try:
        classifier = IntentClassifier.from_examples(examples, encoder=client)
    except (TypeError, ValueError) as error:
        raise CLIError(f"{path}: {error}") from None
    return classifier
