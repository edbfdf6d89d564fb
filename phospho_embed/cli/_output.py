"""The output file of ``embed``: reading what an earlier run left, and appending safely.

OUTPUT is JSONL, one ``{"index": i, "text": ..., "embedding": [...]}`` per line, in the
order the vectors arrived. Each line is written whole and flushed as its vector arrives, so
a crash or ``kill -9`` loses at most the line being written. The next run calls
`scan_output`, which:

- collects the indices present, in a bitmap (one bit per possible index, so millions of
  records cost a few hundred kilobytes, not a Python ``int`` each);
- sums a 64-bit hash of every ``(index, text)`` pair, so the caller can check, in one
  streaming pass over INPUT, that OUTPUT was written from the same INPUT;
- tolerates a torn last line (no newline, not valid JSON, but the start of a JSON object):
  `repair` cuts it off so the file stays valid JSONL; a last line that is complete but lacks
  its newline is kept;
- refuses anything else that is not such a record (a vector that is not a list of finite
  numbers, or not of the same dimension as the others: every such line is counted and the
  first few named), any index present twice, and any line longer than `MAX_LINE_BYTES`.

`OutputLock` holds an exclusive lock on OUTPUT for a whole run, so that a second run on the
same OUTPUT is refused instead of requesting (and paying for) every text a second time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import sys
import threading
from dataclasses import dataclass, field
from typing import BinaryIO

from phospho_embed.cli._common import EXIT_STOPPED, CLIError

_DIGEST_MODULUS = 2**64
# How this command writes a record: the key order and separators are fixed, which lets
# `_parse_line` read index and text without parsing the 1,536 numbers after them.
_EMBEDDING_KEY = b',"embedding":['
# The numbers this command writes for a vector, as `json.dumps` writes floats: always finite
# (no exponent above zero, at most 20 digits before the point). Anything else (a large
# exponent that could overflow to infinity, an integer with a hundred digits) is parsed.
# Possessive quantifiers: the grammar never needs to backtrack, and this is ~4x faster.
_NUMBER = rb"-?+(?:0|[1-9][0-9]{0,19}+)(?:\.[0-9]++)?+(?:e-[0-9]{1,3}+)?+"
_VECTOR_BODY = re.compile(rb"(?:%s,)*+%s" % (_NUMBER, _NUMBER))
#: The longest OUTPUT line read: a record of a 4,096-dimensional vector and a text at the
#: API's limit is well under 1 MiB; a longer "line" is not one of these records.
MAX_LINE_BYTES = 8 * 1024 * 1024
#: Bad lines named in the refusal; the others are counted.
_NAMED_BAD_LINES = 5


class IndexSet:
    """A set of non-negative integers stored as a bitmap: 1 bit per integer up to the largest."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self._count = 0

    def add(self, index: int) -> bool:
        """Add ``index``; return ``False`` if it was already there."""
        byte, bit = divmod(index, 8)
        if byte >= len(self._bits):
            # Grow geometrically: appending indices one by one stays linear overall.
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        mask = 1 << bit
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        self._count += 1
        return True

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int) or index < 0:
            return False
        byte, bit = divmod(index, 8)
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << bit))

    def __len__(self) -> int:
        return self._count


def record_digest(index: int, text: str) -> int:
    """A 64-bit hash of one ``(index, text)`` pair; sums of them compare record sets cheaply."""
    data = f"{index}\x00{text}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


@dataclass
class ExistingOutput:
    """What an earlier run left in OUTPUT.

    Attributes:
        done: the indices present.
        digest: the sum (mod 2**64) of `record_digest` over the records present.
        max_index: the largest index present, -1 when none.
        valid_bytes: the length of the part of the file to keep.
        torn_bytes: the length of a torn last line that `repair` will cut off (0 if none).
        needs_newline: the last record is complete but lacks its newline.
        dimension: the length of the records' vectors (0 when there is none).
    """

    done: IndexSet = field(default_factory=IndexSet)
    digest: int = 0
    max_index: int = -1
    valid_bytes: int = 0
    torn_bytes: int = 0
    needs_newline: bool = False
    dimension: int = 0


def scan_output(path: str, *, max_records: int) -> ExistingOutput:
    """Read OUTPUT (if it exists) line by line; see the module's docstring.

    Args:
        path: OUTPUT.
        max_records: no index may reach this (INPUT cannot hold that many records); checked
            before the bitmap grows, so a stray huge index cannot exhaust memory.

    Raises:
        CLIError: OUTPUT is not a regular file, holds something else than this command's
            records (every such line is counted), an index twice, or an index INPUT cannot
            have.
    """
    state = ExistingOutput()
    check_output_path(path)
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return state
    except OSError as error:
        raise CLIError(f"cannot read OUTPUT {path!r}: {error.strerror or error}") from None
    bad: list[tuple[int, str]] = []
    with file:
        number = 0
        while line := file.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES:
                raise CLIError(
                    f"OUTPUT {path!r} line {number} is longer than {MAX_LINE_BYTES:,} bytes: "
                    "it is not a file written by 'phospho-embed embed'; choose another OUTPUT"
                )
            complete = line.endswith(b"\n")
            if not line.strip():  # tolerated: an empty line holds no record
                if complete:
                    state.valid_bytes += len(line)
                else:
                    state.torn_bytes = len(line)
                continue
            try:
                index, text, dimension = _parse_line(line, trust_layout=complete)
                if state.dimension and dimension != state.dimension:
                    raise ValueError(
                        f"its embedding has {dimension} numbers, the first record's has "
                        f"{state.dimension}"
                    )
            except ValueError as error:
                if complete or not line.lstrip().startswith(b"{"):
                    bad.append((number, str(error)))
                    state.valid_bytes += len(line)
                    continue
                state.torn_bytes = len(line)  # the last line, cut short by a crash or a kill
                continue
            if index >= max_records:
                raise CLIError(mismatch_message(path, f"its line {number} has index {index}"))
            if not state.done.add(index):
                raise CLIError(
                    f"OUTPUT {path!r} holds index {index} twice (again on line {number}); "
                    "it was not written by a single 'phospho-embed embed' INPUT: fix it or "
                    "choose another OUTPUT"
                )
            state.digest = (state.digest + record_digest(index, text)) % _DIGEST_MODULUS
            state.max_index = max(state.max_index, index)
            state.dimension = state.dimension or dimension
            state.valid_bytes += len(line)
            state.needs_newline = not complete
    if bad:
        raise CLIError(_bad_lines_message(path, bad))
    return state


def _bad_lines_message(path: str, bad: list[tuple[int, str]]) -> str:
    named = "; ".join(f"line {number} ({reason})" for number, reason in bad[:_NAMED_BAD_LINES])
    more = f"; and {len(bad) - _NAMED_BAD_LINES} more" if len(bad) > _NAMED_BAD_LINES else ""
    what = "line is not a record" if len(bad) == 1 else "lines are not records"
    return (
        f"OUTPUT {path!r}: {len(bad)} {what} of 'phospho-embed embed': {named}{more}. "
        "Refusing to add to it: delete those lines (their texts are embedded again by the "
        "next run) or choose another OUTPUT"
    )


def check_output_path(path: str) -> None:
    """Refuse an OUTPUT that is not a regular file (or does not exist yet), and ``-``.

    Raises:
        CLIError: ``-`` (standard output), or a directory, FIFO, device or socket.
    """
    if path == "-":
        raise CLIError(
            "OUTPUT '-' (standard output) is not supported: 'embed' appends to a file that "
            "the next run reads back to resume; name a file, e.g. -o vectors.jsonl"
        )
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing (created later) or unreadable (opening it says why)
        return
    if not stat.S_ISREG(mode):
        raise CLIError(
            f"OUTPUT {path!r} is not a regular file (it is {_file_kind(mode)}): 'embed' "
            "appends to a file that the next run reads back to resume; choose a file"
        )


def _file_kind(mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def repair(path: str, state: ExistingOutput) -> None:
    """Cut a torn last line off OUTPUT, so that appending leaves valid JSONL."""
    if state.torn_bytes:
        os.truncate(path, state.valid_bytes)


def mismatch_message(path: str, reason: str) -> str:
    """The refusal when OUTPUT's records do not come from INPUT."""
    return (
        f"OUTPUT {path!r} does not match INPUT: {reason}. It was written from another file "
        "(or another --field/--column); choose another OUTPUT, or delete this one to start over"
    )


def _parse_line(line: bytes, *, trust_layout: bool) -> tuple[int, str, int]:
    """The index, text and vector length of one OUTPUT line; ``ValueError`` saying why it is
    not a record.

    A complete line in this command's own layout is read from its head only, its vector
    checked by a regular expression to be a list of numbers as `json.dumps` writes finite
    floats (~5x faster than parsing the vector, which matters when resuming millions of
    lines). Anything else, and every torn-line candidate, is parsed in full.
    """
    if trust_layout:
        start = line.find(_EMBEDDING_KEY)
        # A '"' inside a text is escaped in JSON, so the first occurrence is the real key.
        body = line[start + len(_EMBEDDING_KEY) : -3] if start > 0 else b""
        if body and line.endswith(b"]}\n") and _VECTOR_BODY.fullmatch(body):
            index, text = _index_and_text(json.loads(line[:start] + b"}"))
            return index, text, body.count(b",") + 1
    try:
        item = json.loads(line)
    except ValueError as error:
        raise ValueError(f"not valid JSON: {error}") from None
    index, text = _index_and_text(item)
    embedding = item.get("embedding")
    if not (isinstance(embedding, list) and embedding and all(map(_finite, embedding))):
        raise ValueError("'embedding' is not a non-empty list of finite numbers")
    return index, text, len(embedding)


def _finite(value: object) -> bool:
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is int and abs(value) <= _MAX_FLOAT_INT


_MAX_FLOAT_INT = int(sys.float_info.max)


def _index_and_text(item: object) -> tuple[int, str]:
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    index, text = item.get("index"), item.get("text")
    if type(index) is not int or index < 0:
        raise ValueError("'index' is not an integer >= 0")
    if not isinstance(text, str):
        raise ValueError("'text' is not a string")
    return index, text


class OutputLock:
    """An exclusive, advisory lock on OUTPUT (``flock``), held until `release` or exit.

    Two runs on one OUTPUT would each request every text (each thinks the other's lines are
    not there yet) and write every index twice; the second run is refused instead.

    Args:
        path: OUTPUT.
        create: create OUTPUT if it is missing (a dry run does not).

    Raises:
        CLIError: another process holds the lock, or OUTPUT cannot be opened.

    Attributes:
        supported: ``False`` where files cannot be locked (no ``fcntl``, e.g. Windows, or a
            file system that refuses locks): the caller says so.
    """

    def __init__(self, path: str, *, create: bool) -> None:
        self.supported = True
        self._file: BinaryIO | None = None
        check_output_path(path)
        try:
            self._file = open(path, "ab" if create else "rb")  # noqa: SIM115 - see release
        except FileNotFoundError:
            return  # a dry run on a new OUTPUT: nothing to lock
        except OSError as error:
            raise CLIError(f"cannot write OUTPUT {path!r}: {error.strerror or error}") from None
        locked = _try_lock(self._file)
        if locked is None:
            self.supported = False
        elif not locked:
            self.release()
            raise CLIError(
                f"OUTPUT {path!r} is in use by another 'phospho-embed embed' run (it holds a "
                "lock on it): wait for that run to end, or choose another OUTPUT; nothing "
                "was sent"
            )

    def release(self) -> None:
        """Release the lock (closing the file releases it); later calls do nothing."""
        if self._file is not None:
            self._file.close()
            self._file = None


if sys.platform == "win32":  # no fcntl: the run goes on unlocked, and says so

    def _try_lock(file: BinaryIO) -> bool | None:
        return None

else:
    import fcntl

    def _try_lock(file: BinaryIO) -> bool | None:
        """Lock ``file`` without waiting: ``True``, ``False`` if another process holds it,
        ``None`` if this file system cannot lock."""
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # ENOLCK, EOPNOTSUPP: e.g. some network file systems
            return None
        return True


class OutputWriter:
    """Appends records to OUTPUT, one whole line per vector, flushed at once.

    ``write`` may be called from the client's worker threads (the core calls its callbacks
    one at a time; the lock makes the writer safe on its own anyway). Lines reach the
    operating system immediately (a crash of this process loses nothing written); ``sync``
    also asks the disk to keep them, which the command does once per chunk rather than per
    line, since an ``fsync`` per vector would cost more than the I/O it protects.
    """

    def __init__(self, path: str, *, needs_newline: bool = False, dimension: int = 0) -> None:
        try:
            self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed by close()
        except OSError as error:
            raise CLIError(f"cannot write OUTPUT {path!r}: {error.strerror or error}") from None
        self.path = path
        self.written = 0
        self.dimension = dimension
        """The length every vector must have: OUTPUT's, else the first written's."""
        self._lock = threading.Lock()
        self._closed = False
        if needs_newline:
            self._append(b"\n")

    def write(self, index: int, text: str, vector: list[float]) -> None:
        """Append one record and flush it.

        Raises:
            CLIError: the vector is not of OUTPUT's dimension (exit 3; it is not written).
        """
        if self.dimension and len(vector) != self.dimension:
            raise CLIError(
                f"stopped: the API returned a {len(vector)}-dimensional vector, and OUTPUT "
                f"{self.path!r} holds {self.dimension}-dimensional ones (another model or "
                "endpoint?): choose another OUTPUT for this one",
                EXIT_STOPPED,
            )
        self.dimension = len(vector)
        line = json.dumps(
            {"index": index, "text": text, "embedding": vector},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        with self._lock:
            self._append(line.encode("utf-8") + b"\n")
            self.written += 1

    def sync(self) -> None:
        """Make what was written durable (``fsync``)."""
        with self._lock:
            if not self._closed:
                self._file.flush()
                os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            finally:
                self._file.close()

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _append(self, data: bytes) -> None:
        if self._closed:
            raise CLIError(f"OUTPUT {self.path!r} was closed while vectors still arrived")
        self._file.write(data)
        self._file.flush()
