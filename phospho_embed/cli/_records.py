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

Files are decoded as UTF-8 (a byte-order mark is ignored), or as ``--encoding`` says. Before
anything is sent, the input is refused when it looks binary (a NUL byte in its first 8 KiB),
when a byte cannot be decoded (the message names the line and the byte), or when a line is
longer than `MAX_LINE_CHARS`. Standard input (``-``) and pipes are read once, into a
temporary file that the passes over the input read again.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from phospho_embed import wire
from phospho_embed.cli._common import CLIError

FORMATS = ("txt", "jsonl", "csv")
_EXTENSIONS = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
DEFAULT_FIELD = "text"

# The csv module's default field limit is 128 KiB; a text near the API's 15,000 tokens can
# exceed it, and the limit is only there to stop runaway quoting.
_CSV_FIELD_LIMIT = 16 * 1024 * 1024
#: The longest line read, in characters: far over any text the API takes (15,000 tokens), and
#: a bound on memory when INPUT is not a file of lines (a binary file, a device).
MAX_LINE_CHARS = 16 * 1024 * 1024
#: How much of INPUT's head is checked for NUL bytes (git's test for a binary file).
BINARY_CHECK_BYTES = 8192
DEFAULT_ENCODING = "utf-8"
STDIN = "-"
# What `surrogateescape` makes of a byte that could not be decoded.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_SPOOL_CHUNK = 1024 * 1024


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
    if path == STDIN:
        raise CLIError(
            f"INPUT '-' (standard input) has no extension to tell its format from; "
            f"pass --format {{{','.join(FORMATS)}}}"
        )
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

    Standard input (``path`` ``-``) and anything else that can be read only once (a pipe,
    ``/dev/stdin``, a process substitution) is first copied to a temporary file, deleted
    when this object goes (or at exit).

    Args:
        path: the file, or ``-`` for standard input.
        fmt: one of `FORMATS`.
        field: the text's field (``jsonl``) or column (``csv``); ignored for ``txt``.
        encoding: the file's encoding (a UTF-8 byte-order mark is ignored).

    Raises:
        CLIError: the file cannot be opened, looks binary, or a CSV header lacks the column.
    """

    def __init__(
        self, path: str, fmt: str, field: str = DEFAULT_FIELD, encoding: str = DEFAULT_ENCODING
    ) -> None:
        self.name = path
        """INPUT as the user named it (messages use this)."""
        self.path = path
        """The file read: ``name``, or the temporary copy of a pipe or standard input."""
        self.format = fmt
        self.field = field
        self.encoding = _python_encoding(encoding)
        self._encoding_name = "UTF-8" if self.encoding == "utf-8-sig" else encoding
        #: Objects of a jsonl pass with and without the field (see `check_field`).
        self._with_field = self._without_field = 0
        self._keys_seen: list[str] = []
        try:
            if path == STDIN or not stat.S_ISREG(os.stat(path).st_mode):
                self.path = self._spool()
            self.size = os.path.getsize(self.path)
            with open(self.path, "rb") as head:
                self._check_head(head.read(BINARY_CHECK_BYTES))
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
            CLIError: the file cannot be read, is not in its encoding, has a line longer
                than `MAX_LINE_CHARS`, or (CSV) its quoting is broken.
        """
        if self.format == "txt":
            return self._txt()
        if self.format == "jsonl":
            return self._jsonl()
        return self._csv()

    def lines(self) -> Iterator[str]:
        """Every line of the file, decoded and checked as `records` checks them (for a
        reader of its own, e.g. ``csv.DictReader``; CSV lines keep their own line ends).

        Raises:
            CLIError: as `records`.
        """
        with self._open() as file:
            yield from self._lines(file)

    def check_field(self) -> None:
        """After a full pass over a jsonl INPUT: refuse it if no object has the field.

        Raises:
            CLIError: objects were read, and none of them has ``field``.
        """
        if self.format == "jsonl" and self._without_field and not self._with_field:
            raise CLIError(missing_field_message(self.name, self.field, self._keys_seen))

    # -- reading ----------------------------------------------------------------------------

    def _spool(self) -> str:
        """Copy standard input or a pipe to a temporary file once; its path."""
        suffix = os.path.splitext(self.name)[1] if self.name != STDIN else ""
        fd, spooled = tempfile.mkstemp(prefix="phospho-embed-input-", suffix=suffix)
        weakref.finalize(self, _remove, spooled)
        source: BinaryIO = sys.stdin.buffer if self.name == STDIN else open(self.name, "rb")  # noqa: SIM115
        try:
            with open(fd, "wb") as copy:
                first = source.read(BINARY_CHECK_BYTES)
                self._check_head(first)  # before copying gigabytes of /dev/zero
                copy.write(first)
                shutil.copyfileobj(source, copy, _SPOOL_CHUNK)
        finally:
            if source is not sys.stdin.buffer:
                source.close()
        return spooled

    def _check_head(self, head: bytes) -> None:
        """Refuse a binary INPUT (a NUL in its first bytes, once decoded) before anything."""
        decoded = codecs.getincrementaldecoder(self.encoding)(errors="replace").decode(head)
        if "\x00" not in decoded:
            return
        hint = ""
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            hint = " (it starts like UTF-16 text: pass --encoding utf-16)"
        nul = head.find(b"\x00")
        raise CLIError(
            f"INPUT {self.name!r} looks binary, not text: byte {nul + 1} is a NUL "
            f"(checked: the first {BINARY_CHECK_BYTES} bytes){hint}; nothing was sent"
        )

    def _open(self) -> TextIO:
        # newline="" for CSV: the csv module handles line ends inside quoted fields itself.
        return open(
            self.path,
            encoding=self.encoding,
            errors="surrogateescape",
            newline="" if self.format == "csv" else None,
        )

    def _lines(self, file: TextIO) -> Iterator[str]:
        """The lines of ``file``, each checked: decoded without error, not over the bound."""
        number = 0
        while line := file.readline(MAX_LINE_CHARS + 1):
            number += 1
            if len(line) > MAX_LINE_CHARS:
                raise CLIError(
                    f"INPUT {self.name!r} line {number} is longer than {MAX_LINE_CHARS:,} "
                    "characters: not a file of texts (the API takes at most 15,000 tokens)"
                )
            undecoded = _ESCAPED_BYTE.search(line)
            if undecoded is not None:
                raise CLIError(self._decoding_message(number, line, undecoded.start()))
            yield line

    def _decoding_message(self, number: int, line: str, position: int) -> str:
        byte = ord(line[position]) - 0xDC00
        try:
            codec = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
            offset = f"byte {len(line[:position].encode(codec, 'surrogateescape')) + 1}"
        except (UnicodeError, LookupError):
            offset = f"character {position + 1}"
        hint = (
            "; if it is in another encoding, pass it with --encoding (e.g. --encoding cp1252 "
            "or --encoding latin-1)"
            if self.encoding == "utf-8-sig"
            else ""
        )
        return (
            f"INPUT {self.name!r} is not {self._encoding_name}: line {number}, {offset} is "
            f"0x{byte:02X}{hint}; nothing was sent"
        )

    # -- formats ----------------------------------------------------------------------------

    def _txt(self) -> Iterator[Record]:
        with self._open() as file:
            for index, line in enumerate(self._lines(file)):
                text = line[:-1] if line.endswith("\n") else line
                if not text.strip():
                    yield Record(index, None)
                else:
                    yield _checked(index, text, "the line")

    def _jsonl(self) -> Iterator[Record]:
        self._with_field = self._without_field = 0
        with self._open() as file:
            for index, line in enumerate(self._lines(file)):
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
                    self._without_field += 1
                    if not self._keys_seen:
                        self._keys_seen = [str(key) for key in item]
                    yield Record(index, None, f"the object has no {self.field!r} field")
                else:
                    self._with_field += 1
                    yield _checked(index, item[self.field], repr(self.field))

    def _csv(self) -> Iterator[Record]:
        column = self._column()
        with self._open() as file:
            reader = csv.reader(self._lines(file))
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
                    f"INPUT {self.name!r} is not valid CSV near line {reader.line_num}: {error}"
                ) from None

    def _column(self) -> int:
        """The position of the text column in the CSV header."""
        csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
        with self._open() as file:
            try:
                header = next(csv.reader(self._lines(file)), None)
            except csv.Error as error:
                raise CLIError(f"INPUT {self.name!r} has no valid CSV header: {error}") from None
        if not header:
            raise CLIError(f"INPUT {self.name!r} is empty: a CSV input needs a header row")
        try:
            return header.index(self.field)
        except ValueError:
            columns = ", ".join(repr(name) for name in header)
            raise CLIError(
                f"INPUT {self.name!r} has no column {self.field!r} (its columns: {columns}); "
                "choose one with --column"
            ) from None


def missing_field_message(name: str, field: str, keys: Iterable[str]) -> str:
    """The refusal of a jsonl INPUT none of whose objects has the text's field."""
    listed = ", ".join(repr(key) for key in keys) or "none"
    return (
        f"INPUT {name!r}: no record has the field {field!r} (the first record's fields: "
        f"{listed}); choose the field holding the text with --field; nothing was sent"
    )


def _python_encoding(name: str) -> str:
    """The codec to read an INPUT declared in ``name``: UTF-8 ignores a byte-order mark."""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise CLIError(f"unknown --encoding {name!r} (e.g. utf-8, cp1252, latin-1)") from None
    return "utf-8-sig" if codec == "utf-8" else codec


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


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
    parser.add_argument(
        "--encoding",
        metavar="NAME",
        default=DEFAULT_ENCODING,
        help="INPUT's encoding, e.g. cp1252 or latin-1 (default: utf-8; a byte-order mark "
        "is ignored)",
    )


def input_file(args: argparse.Namespace) -> InputFile:
    """The INPUT that ``args.input`` and the options of `add_input_arguments` describe
    (``-``: standard input, read once).

    Raises:
        CLIError: an unknown format or encoding, ``--field`` for another format than jsonl,
            ``--column`` for another than csv, or an INPUT (or CSV column) that cannot be
            read.
    """
    fmt = detect_format(args.input, args.format)
    if args.field is not None and fmt != "jsonl":
        raise CLIError(f"--field applies to jsonl input, and INPUT is {fmt} (see --column)")
    if args.column is not None and fmt != "csv":
        raise CLIError(f"--column applies to csv input, and INPUT is {fmt} (see --field)")
    name = args.field if fmt == "jsonl" else args.column
    return InputFile(args.input, fmt, name or DEFAULT_FIELD, args.encoding)
