"""``phospho-embed embed INPUT -o OUTPUT``: embed every text of a file, resumably.

The run streams INPUT twice: first to count and check it against OUTPUT (nothing is sent if
they do not match), then in chunks of texts, each embedded concurrently by the core's
``embed_many`` while its ``on_embedding`` callback appends every vector to OUTPUT the moment
it arrives. Running the same command again skips every index already in OUTPUT, so a crash,
a ``kill -9`` or Ctrl-C costs at most the requests that were in flight.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from phospho_embed import BatchEmbeddingError, PhosphoClient, PhosphoError
from phospho_embed.cli._common import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STOPPED,
    CLIError,
    CommandParser,
    add_client_arguments,
    build_client,
    positive_int,
    require_api_key,
)
from phospho_embed.cli._output import (
    ExistingOutput,
    IndexSet,
    OutputLock,
    OutputWriter,
    check_output_path,
    mismatch_message,
    record_digest,
    repair,
    scan_output,
)
from phospho_embed.cli._progress import Progress
from phospho_embed.cli._records import InputFile, add_input_arguments, input_file

#: Texts per ``embed_many`` call, per unit of concurrency: large enough that the tail of a
#: chunk (fewer requests in flight while its last texts finish) costs little, small enough
#: that the vectors the core keeps for a chunk's result stay in the tens of megabytes.
CHUNK_PER_WORKER = 64
#: Failures printed as they happen; beyond this they are only counted.
LISTED_FAILURES = 20
#: Failures named in the final summary line.
SUMMARIZED_FAILURES = 3
_MAX_REASON = 160

DESCRIPTION = """\
Embed every text of INPUT and append one JSON line per vector to OUTPUT:
  {"index": 3, "text": "...", "embedding": [0.01, ...]}
Lines are written in the order the vectors arrive (not input order), each flushed at once.

INPUT formats (from the extension, or --format):
  .txt     one text per line                      index = line number - 1
  .jsonl   one JSON object per line, --field      index = line number - 1
  .csv     a header row, then rows, --column      index = data row number - 1
INPUT '-' is standard input (pass --format); it is read once, into a temporary file.
INPUT is read as UTF-8 unless --encoding says otherwise; a binary file (a NUL byte in its
first 8 KiB), bytes that are not in the encoding (the line and byte are named) and a
--field that no record has are refused before anything is sent.
Blank lines and empty rows are skipped (they keep their index, and are not failures).
Records that cannot be embedded (an empty or non-string field, a line that is not JSON)
are reported with their index and counted as failures; the run goes on.

Resuming: run the same command again. Indices already in OUTPUT are skipped, so no text
is requested twice, and a torn last line left by a crash is cut off. OUTPUT written from
another INPUT (an index whose text differs), lines of OUTPUT that are not records (each
counted, the first named), and an OUTPUT another run is writing (it is locked) are refused
before anything is sent. OUTPUT must be a regular file.
Progress: a bar on a terminal; redirected, a plain line per tenth of the work.
"""

EPILOG = """\
exit status: 0 all done; 1 some records failed (listed; run again to retry them);
2 bad usage, unreadable file, OUTPUT not matching INPUT, or no API key (nothing sent);
3 stopped by the API (401/402/403) or an unwritable OUTPUT (what was written stays);
130 interrupted (what was written stays).
"""


HELP = "embed every text of a .txt/.jsonl/.csv file into a JSONL file (resumable)"
"""The command's line in ``phospho-embed --help``."""


def configure(parser: CommandParser) -> None:
    """Add the options of ``embed``."""
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="the texts: a .txt, .jsonl or .csv file; '-' for standard input (with --format)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        required=True,
        help="the JSONL file to append vectors to; created if missing, resumed if present, "
        "locked while a run writes to it (a regular file: not '-')",
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        metavar="N",
        help=f"texts per concurrent batch (default: {CHUNK_PER_WORKER} x --max-concurrency)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="do not draw a progress bar on stderr"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check INPUT and OUTPUT and say what would be embedded; send and change nothing",
    )
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``embed`` as parsed; return the exit status (see the epilog)."""
    if not args.dry_run:
        require_api_key(args)
    check_output_path(args.output)  # '-' or a device: refused before INPUT is read
    source = input_file(args)
    _check_distinct(source.path, args.output)
    lock = OutputLock(args.output, create=not args.dry_run)
    try:
        if not lock.supported:
            _say(
                f"cannot lock OUTPUT {args.output!r} on this system: do not run two "
                "'phospho-embed embed' on it at once"
            )
        existing = scan_output(args.output, max_records=source.max_records)
        plan = _plan(source, existing, args.output)
        if args.dry_run:
            _say(plan.dry_run_summary(existing))
            return EXIT_OK
        repair(args.output, existing)
        if existing.torn_bytes:
            _say(f"cut off a torn last line of {existing.torn_bytes} bytes from OUTPUT")
        status = _embed(args, source, existing, plan, lock)
    except BaseException:
        lock.release()
        raise
    if status != EXIT_INTERRUPTED:  # else held until the vectors in flight are written
        lock.release()
    return status


# -- checking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the first pass over INPUT found.

    Attributes:
        total: records in INPUT.
        present: records already in OUTPUT.
        blank: blank records (skipped).
        invalid: records that cannot be embedded (failures).
        todo: records to embed now.
    """

    total: int
    present: int
    blank: int
    invalid: int
    todo: int

    def dry_run_summary(self, existing: ExistingOutput) -> str:
        """The line ``--dry-run`` prints."""
        torn = (
            f"; a torn last line of {existing.torn_bytes} bytes would be cut off"
            if existing.torn_bytes
            else ""
        )
        return (
            f"dry run: {self.total} records: {self.todo} to embed, {self.present} already "
            f"present, {self.blank} blank, {self.invalid} invalid{torn}; nothing was sent"
        )


def _check_distinct(input_path: str, output_path: str) -> None:
    try:
        same = os.path.samefile(input_path, output_path)
    except OSError:  # OUTPUT does not exist yet
        return
    if same:
        raise CLIError("INPUT and OUTPUT are the same file")


def _plan(source: InputFile, existing: ExistingOutput, output_path: str) -> Plan:
    """Count INPUT's records and check OUTPUT's against them, in one streaming pass.

    Raises:
        CLIError: OUTPUT does not match INPUT (nothing has been sent or changed).
    """
    total = blank = invalid = 0
    digest = 0
    for record in source.records():
        total += 1
        if record.index in existing.done:
            if record.text is None:
                kind = "blank" if record.blank else "invalid"
                raise CLIError(
                    mismatch_message(
                        output_path, f"it has index {record.index}, which is {kind} in INPUT"
                    )
                )
            digest += record_digest(record.index, record.text)
        elif record.blank:
            blank += 1
        elif record.text is None:
            invalid += 1
    source.check_field()  # a --field no record has: refused before anything is sent
    if existing.max_index >= total:
        raise CLIError(
            mismatch_message(
                output_path, f"it has index {existing.max_index}, INPUT has {total} records"
            )
        )
    if digest % 2**64 != existing.digest:
        raise CLIError(
            mismatch_message(
                output_path, "the text of at least one of its records differs from INPUT's"
            )
        )
    present = len(existing.done)
    return Plan(total, present, blank, invalid, total - present - blank - invalid)


# -- embedding --------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Counts of the embedding pass, and the failures to report."""

    progress: Progress
    blank: int = 0
    failed: int = 0
    first_failures: list[tuple[int, str]] = field(default_factory=list)

    def fail(self, index: int, reason: str) -> None:
        """Report one record that has no vector, and count it."""
        self.failed += 1
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 3] + "..."
        # The summary names the lowest indices: records of a chunk fail after invalid
        # records read later, and the user reads the file from the top.
        self.first_failures.append((index, reason))
        self.first_failures.sort()
        del self.first_failures[SUMMARIZED_FAILURES:]
        if self.failed <= LISTED_FAILURES:
            self.progress.write(f"index {index}: not embedded: {reason}")
        elif self.failed == LISTED_FAILURES + 1:
            self.progress.write("further failures are counted, not listed")


class _Chunk:
    """Texts sent in one ``embed_many`` call, and where each goes in OUTPUT."""

    def __init__(self, items: list[tuple[int, str]], writer: OutputWriter) -> None:
        self.indices = [index for index, _ in items]
        self.texts = [text for _, text in items]
        self._writer = writer

    def on_embedding(self, position: int, vector: list[float]) -> None:
        """The core's callback: write the vector of ``texts[position]`` now."""
        self._writer.write(self.indices[position], self.texts[position], vector)


def _embed(
    args: argparse.Namespace,
    source: InputFile,
    existing: ExistingOutput,
    plan: Plan,
    lock: OutputLock,
) -> int:
    client = build_client(args)
    writer = OutputWriter(
        args.output, needs_newline=existing.needs_newline, dimension=existing.dimension
    )
    progress = Progress(plan.total, initial=plan.present, enabled=not args.no_progress)
    tally = _Tally(progress)
    chunk_size = args.chunk_size or CHUNK_PER_WORKER * args.max_concurrency
    interrupted = False
    try:
        stop = _embed_chunks(client, source, existing.done, writer, tally, chunk_size)
    except KeyboardInterrupt:
        interrupted = True
        progress.close()
        _say(
            "interrupted: writing the vectors of the requests in flight (Ctrl-C again to drop them)"
        )
        _let_in_flight_land(
            writer,
            lock,
            lambda: _say(
                f"interrupted: {_counts(writer, plan, tally)} -> {args.output}; "
                "run the same command to resume"
            ),
        )
        return EXIT_INTERRUPTED
    except OSError as error:  # OUTPUT unwritable (disk full...) or INPUT gone mid-run
        where = f" ({error.filename})" if error.filename else ""
        raise CLIError(f"stopped: {error.strerror or error}{where}", EXIT_STOPPED) from None
    finally:
        if not interrupted:
            progress.close()
            writer.close()
            client.close()
    if stop is not None:
        _say(
            f"stopped: {type(stop).__name__}: {stop}; {_counts(writer, plan, tally)}; "
            "fix this and run the same command to continue"
        )
        return EXIT_STOPPED
    summary = f"{_counts(writer, plan, tally)} -> {args.output}"
    if tally.failed:
        more = ", ..." if tally.failed > len(tally.first_failures) else ""
        named = ", ".join(f"index {index} ({reason})" for index, reason in tally.first_failures)
        _say(f"{summary}; failed: {named}{more}")
        return EXIT_FAILURES
    _say(summary)
    return EXIT_OK


def _embed_chunks(
    client: PhosphoClient,
    source: InputFile,
    done: IndexSet,
    writer: OutputWriter,
    tally: _Tally,
    chunk_size: int,
) -> PhosphoError | None:
    """Embed every pending record, chunk by chunk; the fatal error that stopped it, if any."""
    for items in _batched(_pending(source, done, tally), chunk_size):
        chunk = _Chunk(items, writer)
        try:
            client.embed_many(
                chunk.texts, progress=tally.progress.advance, on_embedding=chunk.on_embedding
            )
        except BatchEmbeddingError as error:
            fatal = error.stopped_by
            if fatal is not None:
                return fatal
            for position, cause in error.errors.items():
                tally.fail(chunk.indices[position], f"{type(cause).__name__}: {cause}")
        except PhosphoError as error:  # 401/402/403 before any vector of the chunk
            return error
        finally:
            writer.sync()
    return None


def _pending(source: InputFile, done: IndexSet, tally: _Tally) -> Iterator[tuple[int, str]]:
    """``(index, text)`` of every record to embed; blank and invalid ones are tallied here."""
    for record in source.records():
        if record.index in done:
            continue
        if record.text is not None:
            yield record.index, record.text
            continue
        if record.problem is not None:
            tally.fail(record.index, record.problem)
        else:
            tally.blank += 1
        tally.progress.advance()


def _batched(items: Iterable[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _counts(writer: OutputWriter, plan: Plan, tally: _Tally) -> str:
    parts = [f"{writer.written} embedded", f"{plan.present} already present"]
    if tally.blank:
        parts.append(f"{tally.blank} blank skipped")
    parts.append(f"{tally.failed} failed")
    return ", ".join(parts)


def _let_in_flight_land(
    writer: OutputWriter, lock: OutputLock, summary: Callable[[], None]
) -> None:
    """After Ctrl-C: keep OUTPUT open (and locked) for the vectors of the requests still in
    flight, and print the summary once they are written.

    Those requests are paid for. The core stops handing out texts, and Python waits for the
    client's worker threads before the process exits, so their vectors still get written;
    then (atexit runs once the threads are joined) OUTPUT is closed, the summary printed with
    every vector counted, and the lock released. A second Ctrl-C quits at once instead,
    losing only those few vectors (the next run asks for them again).
    """

    def finish() -> None:
        try:
            writer.close()
            summary()
        finally:
            lock.release()

    atexit.register(finish)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(EXIT_INTERRUPTED))


def _say(message: str) -> None:
    print(f"phospho-embed embed: {message}", file=sys.stderr, flush=True)
