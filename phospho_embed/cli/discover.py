"""``phospho-embed discover INPUT -o OUTPUT``: find the intents in a file of messages.

INPUT is read like ``embed``'s (``.txt``, ``.jsonl``, ``.csv``), or is the JSONL that
``embed`` wrote: its vectors are used as they are and nothing is embedded again. Texts
are embedded with the same client options as the other subcommands, then clustered by
`phospho_embed.discovery.discover_intents`; OUTPUT gets one JSON line per message.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phospho_embed import BatchEmbeddingError, wire
from phospho_embed.cli._common import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_STOPPED,
    CLIError,
    CommandParser,
    add_client_arguments,
    build_client,
    positive_float,
    positive_int,
    require_api_key,
)
from phospho_embed.cli._progress import Progress
from phospho_embed.cli._records import (
    InputFile,
    add_input_arguments,
    input_file,
    missing_field_message,
)

if TYPE_CHECKING:
    from phospho_embed.discovery import DiscoveryResult

#: Problems printed one per line; beyond this they are only counted.
LISTED_PROBLEMS = 20
#: The field of ``embed``'s output that holds the vector.
EMBEDDING_FIELD = "embedding"

DESCRIPTION = """\
Find the intents in the messages of INPUT: embed them (or read the vectors 'embed' wrote),
cluster them, name each intent from its keywords, and write one JSON line per message:
  {"index": 3, "text": "...", "intent_id": 5, "intent": "cancel, order"}
("intent_id" -1 and "intent" null: the message is in no intent; "timestamp" too with
--timestamp-field). A table of the intents goes to standard output, progress to stderr.

INPUT formats (from the extension, or --format):
  .txt     one text per line                      index = line number - 1
  .jsonl   one JSON object per line, --field      index = line number - 1
           (the OUTPUT of 'embed' is recognised: its vectors are used, nothing is sent)
  .csv     a header row, then rows, --column      index = data row number - 1
"""

EPILOG = """\
exit status: 0 done; 1 done, but some records could not be used (listed; they are not in
OUTPUT); 2 bad usage or input, no API key, or the analytics extra missing (nothing sent);
3 stopped by the API (401/402/403) or an unwritable OUTPUT; 130 interrupted.
"""


HELP = "find the intents in a file of messages (clusters, names, report)"
"""The command's line in ``phospho-embed --help``."""


def configure(parser: CommandParser) -> None:
    """Add the options of ``discover``."""
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="the messages: .txt, .jsonl, .csv, or embed's OUTPUT; '-' for standard input "
        "(with --format)",
    )
    parser.add_argument(
        "-o", "--output", metavar="OUTPUT", required=True, help="the JSONL file to write"
    )
    parser.add_argument("--report", metavar="HTML", help="also write the HTML report there")
    parser.add_argument("--plot", metavar="PNG", help="also draw the map of intents there")
    parser.add_argument(
        "--n-intents",
        type=positive_int,
        metavar="K",
        help="how many intents to look for (default: chosen by silhouette)",
    )
    parser.add_argument(
        "--min-size",
        type=positive_int,
        metavar="N",
        help="fewest messages an intent may have (default: 0.2%% of them, at least 5)",
    )
    parser.add_argument(
        "--outlier-threshold",
        type=positive_float,
        metavar="Z",
        help="robust standard deviations under an intent's typical similarity before a "
        "message is left out (default: 3; lower: purer intents, more left out)",
    )
    parser.add_argument(
        "--timestamp-field",
        metavar="NAME",
        help="jsonl/csv: the field or column with each message's time (ISO 8601 or Unix "
        "seconds), for the report's trend chart and OUTPUT's 'timestamp'",
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--no-progress", action="store_true", help="do not draw a progress bar on stderr"
    )
    add_client_arguments(parser)


@dataclass
class _Messages:
    """What was read from INPUT: usable messages (with their record indices), and the
    records that could not be used."""

    indices: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    vectors: list[list[float]] | None = None
    timestamps: list[Any] | None = None
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: Whether an object had the text's field (``None``: no object read yet), and the
    #: fields of the first object, for the refusal when none has it.
    field_seen: bool | None = None
    first_keys: list[str] = field(default_factory=list)


#: Unix seconds written as text (CSV cells are strings): digits, an optional sign and decimals.
_SECONDS = re.compile(r"[+-]?\d+(\.\d*)?")


def run(args: argparse.Namespace) -> int:
    """Run ``discover`` as parsed; return the exit status (see the epilog)."""
    try:
        from phospho_embed.discovery import discover_intents
        from phospho_embed.discovery._deps import require

        require("sklearn", "phospho-embed discover")
        require("matplotlib", "phospho-embed discover")
    except ImportError as error:  # before anything is read or sent
        raise CLIError(str(error)) from None
    _check_paths(args)
    messages = _read(args)
    for index, reason in messages.problems[:LISTED_PROBLEMS]:
        _say(f"index {index}: skipped: {reason}")
    if len(messages.problems) > LISTED_PROBLEMS:
        _say(f"... and {len(messages.problems) - LISTED_PROBLEMS} more records skipped")
    if messages.vectors is None:
        require_api_key(args)
        _embed(args, messages)
    if not messages.texts:
        raise CLIError(f"INPUT {args.input!r} holds no message that can be used")
    _say(f"finding intents in {len(messages.texts):,} messages")
    try:
        found = discover_intents(
            messages.texts,
            vectors=messages.vectors,
            n_intents=args.n_intents,
            min_size=args.min_size,
            outlier_threshold=3.0 if args.outlier_threshold is None else args.outlier_threshold,
            timestamps=messages.timestamps,
        )
    except (TypeError, ValueError) as error:
        raise CLIError(str(error)) from None
    _write(args, messages, found)
    _print_table(found)
    if messages.problems:
        _say(f"{len(messages.problems)} records skipped (listed above); the others are in OUTPUT")
        return EXIT_FAILURES
    return EXIT_OK


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse, before anything is sent, outputs that cannot be written and INPUT as OUTPUT."""
    source = Path(args.input)
    for option, value in (("-o", args.output), ("--report", args.report), ("--plot", args.plot)):
        if value is None:
            continue
        if value == "-":
            raise CLIError(
                f"{option} '-' (standard output) is not supported: standard output gets the "
                f"table of intents; name a file"
            )
        path = Path(value)
        if not path.parent.is_dir():
            raise CLIError(f"{option} {value!r}: the directory {str(path.parent)!r} does not exist")
        if source.exists() and path.exists() and path.samefile(source):
            raise CLIError(f"{option} {value!r} is INPUT itself")


# -- reading ----------------------------------------------------------------------------------


def _read(args: argparse.Namespace) -> _Messages:
    source = input_file(args)  # checks the options, the file and the CSV column
    fmt, name = source.format, source.field
    if args.timestamp_field is not None and fmt == "txt":
        raise CLIError("--timestamp-field needs jsonl or csv input: a .txt line holds text only")
    if fmt == "txt":
        messages = _Messages()
        for record in source.records():
            if record.text is not None:
                messages.indices.append(record.index)
                messages.texts.append(record.text)
            elif record.problem is not None:
                messages.problems.append((record.index, record.problem))
        return messages
    rows = _json_rows(source) if fmt == "jsonl" else _csv_rows(source)
    messages = _from_rows(rows, name, args.timestamp_field, embedded=_embedded(source))
    if fmt == "jsonl" and not messages.texts and messages.field_seen is False:
        raise CLIError(missing_field_message(source.name, name, messages.first_keys))
    return messages


def _embedded(source: InputFile) -> bool:
    """Whether INPUT is ``embed``'s OUTPUT: its first object has a list of numbers as
    ``embedding``."""
    if source.format != "jsonl":
        return False
    for _, item in _json_rows(source):
        if isinstance(item, dict):
            return isinstance(item.get(EMBEDDING_FIELD), list)
        return False
    return False


def _json_rows(source: InputFile) -> Iterator[tuple[int, Any]]:
    """``(index, object)`` per non-blank line; a line that is not JSON gives a string
    saying so instead of an object."""
    for index, line in enumerate(source.lines()):
        if not line.strip():
            continue
        try:
            yield index, json.loads(line)
        except ValueError as error:
            yield index, f"the line is not valid JSON ({error})"


def _csv_rows(source: InputFile) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(source.lines())
    try:
        for index, row in enumerate(reader):
            if any(value for value in row.values()):
                yield index, row
    except csv.Error as error:
        raise CLIError(
            f"INPUT {source.name!r} is not valid CSV near line {reader.line_num}: {error}"
        ) from None


def _from_rows(
    rows: Iterator[tuple[int, Any]], name: str, time_field: str | None, *, embedded: bool
) -> _Messages:
    messages = _Messages(
        vectors=[] if embedded else None, timestamps=[] if time_field is not None else None
    )
    for index, item in rows:
        if isinstance(item, dict):
            if name in item:
                messages.field_seen = True
            elif messages.field_seen is None:
                messages.field_seen = False
                messages.first_keys = [str(key) for key in item]
        problem = _problem(item, name, time_field, embedded)
        if problem is not None:
            messages.problems.append((index, problem))
            continue
        messages.indices.append(int(item["index"]) if embedded else index)
        messages.texts.append(item[name])
        if messages.vectors is not None:
            messages.vectors.append(item[EMBEDDING_FIELD])
        if messages.timestamps is not None and time_field is not None:
            messages.timestamps.append(_timestamp(item[time_field]))
    if embedded:
        # embed writes vectors in the order they arrived: put the messages back in order.
        order = sorted(range(len(messages.indices)), key=messages.indices.__getitem__)
        messages.indices = [messages.indices[i] for i in order]
        messages.texts = [messages.texts[i] for i in order]
        if messages.vectors is not None:
            messages.vectors = [messages.vectors[i] for i in order]
        if messages.timestamps is not None:
            messages.timestamps = [messages.timestamps[i] for i in order]
    return messages


def _problem(item: Any, name: str, time_field: str | None, embedded: bool) -> str | None:
    """Why a record cannot be used, or ``None``."""
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return "the line is not a JSON object"
    if name not in item or item[name] is None:
        return f"the record has no {name!r} field"
    try:
        wire.check_text(item[name], repr(name))
    except (TypeError, ValueError) as error:
        return str(error)
    if embedded:
        vector = item.get(EMBEDDING_FIELD)
        if not isinstance(vector, list) or not vector:
            return f"the record has no {EMBEDDING_FIELD!r} list"
        if not isinstance(item.get("index"), int):
            return "the record has no integer 'index' (not a line written by embed?)"
    if time_field is not None and item.get(time_field) in (None, ""):
        return f"the record has no {time_field!r} field"
    if time_field is not None:
        # Checked here, with the record's own index, before anything is embedded.
        from phospho_embed.discovery._trend import parse_timestamps

        try:
            parse_timestamps([_timestamp(item[time_field])], repr(time_field))
        except (TypeError, ValueError) as error:
            return str(error).replace(f"{time_field!r}[0]", f"its {time_field!r}")
    return None


def _timestamp(value: Any) -> Any:
    """A record's time as `discover_intents` takes it: a CSV cell of digits is Unix seconds."""
    if isinstance(value, str) and _SECONDS.fullmatch(value.strip()):
        return float(value)
    return value


# -- embedding --------------------------------------------------------------------------------


def _embed(args: argparse.Namespace, messages: _Messages) -> None:
    """Embed the texts; texts that still fail after their retries are moved to the problems."""
    progress = Progress(len(messages.texts), enabled=not args.no_progress)
    with build_client(args) as client:
        try:
            vectors: list[list[float] | None] = list(
                client.embed_many(messages.texts, progress=progress.advance)
            )
        except BatchEmbeddingError as error:
            if error.stopped_by is not None:  # 401/402/403: the whole run is refused
                raise error.stopped_by from error
            vectors = list(error.embeddings)
            for position, cause in sorted(error.errors.items()):
                reason = f"not embedded: {type(cause).__name__}: {cause}"
                messages.problems.append((messages.indices[position], reason))
                if len(messages.problems) <= LISTED_PROBLEMS:
                    progress.write(f"index {messages.indices[position]}: {reason}")
        finally:
            progress.close()
    kept = [i for i, vector in enumerate(vectors) if vector is not None]
    messages.indices = [messages.indices[i] for i in kept]
    messages.texts = [messages.texts[i] for i in kept]
    messages.vectors = [vector for vector in vectors if vector is not None]
    if messages.timestamps is not None:
        messages.timestamps = [messages.timestamps[i] for i in kept]


# -- writing ----------------------------------------------------------------------------------


def _write(args: argparse.Namespace, messages: _Messages, found: DiscoveryResult) -> None:
    names = [intent.name for intent in found.intents]
    times = None if found.timestamps is None else found.timestamps.astype(str)
    try:
        with open(args.output, "w", encoding="utf-8") as output:
            for position, (index, text) in enumerate(
                zip(messages.indices, messages.texts, strict=True)
            ):
                label = int(found.labels[position])
                line: dict[str, Any] = {
                    "index": index,
                    "text": text,
                    "intent_id": label,
                    "intent": names[label] if label >= 0 else None,
                }
                if times is not None:
                    line["timestamp"] = str(times[position])
                output.write(json.dumps(line, ensure_ascii=False) + "\n")
        _say(f"wrote {len(messages.texts):,} messages -> {args.output}")
        if args.report is not None:
            found.report(args.report)
            _say(f"wrote the report -> {args.report}")
        if args.plot is not None:
            found.plot(args.plot)
            _say(f"drew the map -> {args.plot}")
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise CLIError(f"stopped: {error.strerror or error}{where}", EXIT_STOPPED) from None


def _print_table(found: DiscoveryResult) -> None:
    """The intents on stdout: id, size, share, name; then a summary line."""
    print(f"{'id':>4}  {'messages':>8}  {'share':>6}  name")
    for intent in found.intents:
        print(f"{intent.id:>4}  {intent.size:>8,}  {intent.share:>6.1%}  {intent.name}")
    outliers = len(found.outliers)
    share = outliers / len(found.texts)
    print(f"{'-':>4}  {outliers:>8,}  {share:>6.1%}  (no intent)")
    print(found.summary().splitlines()[-1])


def _say(message: str) -> None:
    print(f"phospho-embed discover: {message}", file=sys.stderr, flush=True)
