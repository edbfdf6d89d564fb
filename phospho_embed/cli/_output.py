"""The output file of ``embed``: reading what an earlier run left, and appending safely.

OUTPUT is JSONL, one ``{"index": i, "text": ..., "embedding": [...]}`` per line, in the
order the vectors arrived. Each line is written whole and flushed as its vector arrives, so
a crash or ``kill -9`` loses at most the line being written. The next run calls
`scan_output`, which:

- collects the indices present, in a bitmap (one bit per possible index, so millions of
  records cost a few hundred kilobytes, not a Python ``int`` each);
- sums a 64-bit hash of every ``(index, text)`` pair, so the caller can check, in one
  streaming pass over INPUT, that OUTPUT was written from the same INPUT;
- tolerates a torn last line (no newline, not valid JSON): `repair` cuts it off so the file
  stays valid JSONL; a last line that is complete but lacks its newline is kept;
- refuses anything else that is not such a record, and any index present twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import BinaryIO

from phospho_embed.cli._common import CLIError

_DIGEST_MODULUS = 2**64
# How this command writes a record: the key order and separators are fixed, which lets
# `_parse_line` read index and text without parsing the 1,536 numbers after them.
_EMBEDDING_KEY = b',"embedding":['
_NUMBER_BYTES = b"0123456789.eE+-,"


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
    """

    done: IndexSet = field(default_factory=IndexSet)
    digest: int = 0
    max_index: int = -1
    valid_bytes: int = 0
    torn_bytes: int = 0
    needs_newline: bool = False


def scan_output(path: str, *, max_records: int) -> ExistingOutput:
    """Read OUTPUT (if it exists) line by line; see the module's docstring.

    Args:
        path: OUTPUT.
        max_records: no index may reach this (INPUT cannot hold that many records); checked
            before the bitmap grows, so a stray huge index cannot exhaust memory.

    Raises:
        CLIError: OUTPUT holds something else than this command's records, an index twice,
            or an index INPUT cannot have.
    """
    state = ExistingOutput()
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return state
    except OSError as error:
        raise CLIError(f"cannot read OUTPUT {path!r}: {error.strerror or error}") from None
    with file:
        for number, line in enumerate(file, 1):
            complete = line.endswith(b"\n")
            if not line.strip():  # tolerated: an empty line holds no record
                if complete:
                    state.valid_bytes += len(line)
                else:
                    state.torn_bytes = len(line)
                continue
            try:
                index, text = _parse_line(line, trust_layout=complete)
            except ValueError as error:
                if complete:
                    raise CLIError(
                        f"OUTPUT {path!r} line {number} is not a record of 'phospho-embed "
                        f"embed' ({error}); refusing to add to it: fix it or choose another "
                        "OUTPUT"
                    ) from None
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
            state.valid_bytes += len(line)
            state.needs_newline = not complete
    return state


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


def _parse_line(line: bytes, *, trust_layout: bool) -> tuple[int, str]:
    """The index and text of one OUTPUT line; ``ValueError`` saying why it is not a record.

    A complete line in this command's own layout is read from its head only (~50x faster
    than parsing the vector, which matters when resuming millions of lines); its vector is
    checked to be a non-empty list of number characters. Anything else, and every torn-line
    candidate, is parsed in full.
    """
    if trust_layout:
        start = line.find(_EMBEDDING_KEY)
        # A '"' inside a text is escaped in JSON, so the first occurrence is the real key.
        body = line[start + len(_EMBEDDING_KEY) : -3] if start > 0 else b""
        if body and line.endswith(b"]}\n") and not body.translate(None, _NUMBER_BYTES):
            return _index_and_text(json.loads(line[:start] + b"}"), need_embedding=False)
    return _index_and_text(json.loads(line), need_embedding=True)


def _index_and_text(item: object, *, need_embedding: bool) -> tuple[int, str]:
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    index, text = item.get("index"), item.get("text")
    if type(index) is not int or index < 0:
        raise ValueError("'index' is not an integer >= 0")
    if not isinstance(text, str):
        raise ValueError("'text' is not a string")
    if need_embedding:
        embedding = item.get("embedding")
        if not (
            isinstance(embedding, list)
            and embedding
            and all(type(value) in (float, int) for value in embedding)
        ):
            raise ValueError("'embedding' is not a non-empty list of numbers")
    return index, text


class OutputWriter:
    """Appends records to OUTPUT, one whole line per vector, flushed at once.

    ``write`` may be called from the client's worker threads (the core calls its callbacks
    one at a time; the lock makes the writer safe on its own anyway). Lines reach the
    operating system immediately (a crash of this process loses nothing written); ``sync``
    also asks the disk to keep them, which the command does once per chunk rather than per
    line, since an ``fsync`` per vector would cost more than the I/O it protects.
    """

    def __init__(self, path: str, *, needs_newline: bool = False) -> None:
        try:
            self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed by close()
        except OSError as error:
            raise CLIError(f"cannot write OUTPUT {path!r}: {error.strerror or error}") from None
        self.path = path
        self.written = 0
        self._lock = threading.Lock()
        self._closed = False
        if needs_newline:
            self._append(b"\n")

    def write(self, index: int, text: str, vector: list[float]) -> None:
        """Append one record and flush it."""
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
