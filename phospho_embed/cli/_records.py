"""Reading the records of an input file lazily: ``.txt``, ``.jsonl`` or ``.csv``.

A record's **index** is its 0-based position in the file, so a user can find it again:

- ``.txt``: one text per line; index = line number - 1.
- ``.jsonl``: one JSON object per line, the text in a field; index = line number - 1.
- ``.csv``: a header row, then one text per row in a column; index = data row number - 1
  (the header is not counted; a quoted field spanning lines is still one row).

Blank lines (and empty CSV rows) are *blank* records: they keep their index, are skipped and
are not failures (a trailing empty line or paragraph breaks are formatting, not data). A record
that is there but cannot be embedded (an empty or non-string field, a line that is not JSON,
a NUL character, bytes that are not UTF-8) is *invalid*: reported with its index, counted as
a failure.

Files are decoded as UTF-8 (a byte-order mark is ignored); undecodable bytes make the record
invalid rather than stopping the run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from phospho_embed import wire
from phospho_embed.cli._common import CLIError

FORMATS = ("txt", "jsonl", "csv")
_EXTENSIONS = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
DEFAULT_FIELD = "text"

# The csv module's default field limit is 128 KiB; a text near the API's 15,000 tokens can
# exceed it, and the limit is only there to stop runaway quoting.
_CSV_FIELD_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the input.

    Attributes:
        index: the 0-based position of the record in the file (see the module's docstring).
        text: the text to embed; ``None`` when the record is blank or invalid.
        problem: why an invalid record cannot be embedded; ``None`` otherwise.
    """

    index: int
    text: str | None
    problem: str | None = None

    @property
    def blank(self) -> bool:
        """A blank line or empty row: skipped, not a failure."""
        return self.text is None and self.problem is None


def detect_format(path: str, explicit: str | None) -> str:
    """The input's format: ``explicit`` if given, else from the file's extension."""
    if explicit is not None:
        return explicit
    extension = os.path.splitext(path)[1].lower()
    try:
        return _EXTENSIONS[extension]
    except KeyError:
        known = ", ".join(sorted(_EXTENSIONS))
        raise CLIError(
            f"cannot tell the format of INPUT {path!r} from its extension "
            f"(known: {known}); pass --format {{{','.join(FORMATS)}}}"
        ) from None


class InputFile:
    """An input file of a known format, read lazily as many times as needed.

    Args:
        path: the file.
        fmt: one of `FORMATS`.
        field: the text's field (``jsonl``) or column (``csv``); ignored for ``txt``.

    Raises:
        CLIError: the file cannot be opened, or a CSV header lacks the column.
    """

    def __init__(self, path: str, fmt: str, field: str = DEFAULT_FIELD) -> None:
        self.path = path
        self.format = fmt
        self.field = field
        try:
            self.size = os.path.getsize(path)
            self._open().close()  # fail now, not after OUTPUT was read
        except OSError as error:
            raise CLIError(f"cannot read INPUT {path!r}: {error.strerror or error}") from None
        if fmt == "csv":
            self._column()  # a missing column is a usage error, found before anything else

    @property
    def max_records(self) -> int:
        """An upper bound on the number of records: every record takes at least one byte."""
        return self.size + 1

    def records(self) -> Iterator[Record]:
        """Every record, in file order, one at a time (the file is never held in memory).

        Raises:
            CLIError: the file cannot be read, or (CSV) its quoting is broken.
        """
        if self.format == "txt":
            return self._txt()
        if self.format == "jsonl":
            return self._jsonl()
        return self._csv()

    # -- formats ----------------------------------------------------------------------------

    def _open(self) -> TextIO:
        # newline="" for CSV: the csv module handles line ends inside quoted fields itself.
        return open(
            self.path,
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="" if self.format == "csv" else None,
        )

    def _txt(self) -> Iterator[Record]:
        with self._open() as lines:
            for index, line in enumerate(lines):
                text = line[:-1] if line.endswith("\n") else line
                if not text.strip():
                    yield Record(index, None)
                else:
                    yield _checked(index, text, "the line")

    def _jsonl(self) -> Iterator[Record]:
        with self._open() as lines:
            for index, line in enumerate(lines):
                if not line.strip():
                    yield Record(index, None)
                    continue
                try:
                    item = json.loads(line)
                except ValueError as error:
                    yield Record(index, None, f"the line is not valid JSON ({error})")
                    continue
                if not isinstance(item, dict):
                    yield Record(index, None, "the line is not a JSON object")
                elif self.field not in item:
                    yield Record(index, None, f"the object has no {self.field!r} field")
                else:
                    yield _checked(index, item[self.field], repr(self.field))

    def _csv(self) -> Iterator[Record]:
        column = self._column()
        with self._open() as lines:
            reader = csv.reader(lines)
            try:
                next(reader, None)  # the header
                for index, row in enumerate(reader):
                    if not row:
                        yield Record(index, None)
                    elif column >= len(row):
                        yield Record(index, None, f"the row has no {self.field!r} column")
                    else:
                        yield _checked(index, row[column], repr(self.field))
            except csv.Error as error:
                raise CLIError(
                    f"INPUT {self.path!r} is not valid CSV near line {reader.line_num}: {error}"
                ) from None

    def _column(self) -> int:
        """The position of the text column in the CSV header."""
        csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
        with self._open() as lines:
            try:
                header = next(csv.reader(lines), None)
            except csv.Error as error:
                raise CLIError(f"INPUT {self.path!r} has no valid CSV header: {error}") from None
        if not header:
            raise CLIError(f"INPUT {self.path!r} is empty: a CSV input needs a header row")
        try:
            return header.index(self.field)
        except ValueError:
            columns = ", ".join(repr(name) for name in header)
            raise CLIError(
                f"INPUT {self.path!r} has no column {self.field!r} (its columns: {columns}); "
                "choose one with --column"
            ) from None


def _checked(index: int, value: object, what: str) -> Record:
    """A record of ``value`` if the API can embed it, else an invalid record saying why."""
    try:
        return Record(index, wire.check_text(value, what))
    except (TypeError, ValueError) as error:
        return Record(index, None, str(error))


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Add INPUT's ``--format``, ``--field`` and ``--column`` options (read by `input_file`)."""
    parser.add_argument(
        "--format", choices=FORMATS, help="INPUT's format (default: from its extension)"
    )
    parser.add_argument(
        "--field",
        metavar="NAME",
        help=f"jsonl: the field holding the text (default: {DEFAULT_FIELD})",
    )
    parser.add_argument(
        "--column",
        metavar="NAME",
        help=f"csv: the column holding the text (default: {DEFAULT_FIELD})",
    )


def input_file(args: argparse.Namespace) -> InputFile:
    """The INPUT that ``args.input`` and the options of `add_input_arguments` describe.

    Raises:
        CLIError: an unknown format, ``--field`` for another format than jsonl, ``--column``
            for another than csv, or an INPUT (or CSV column) that cannot be read.
    """
    fmt = detect_format(args.input, args.format)
    if args.field is not None and fmt != "jsonl":
        raise CLIError(f"--field applies to jsonl input, and INPUT is {fmt} (see --column)")
    if args.column is not None and fmt != "csv":
        raise CLIError(f"--column applies to csv input, and INPUT is {fmt} (see --field)")
    name = args.field if fmt == "jsonl" else args.column
    return InputFile(args.input, fmt, name or DEFAULT_FIELD)
