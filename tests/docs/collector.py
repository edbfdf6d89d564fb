"""Runs the code blocks of Markdown pages, so that no documented example can go stale.

The convention for doc authors:

- Every fenced ``python`` (or ``py``) block runs. The blocks of one file run in order in one
  shared namespace, like a notebook; top-level ``await`` is allowed and every async block of
  a file runs in the same event loop.
- ``<!-- docs-test: skip (reason) -->`` on the line before a fence skips that block.
- ``<!-- docs-test: setup ... -->`` is hidden Python, run where it stands in the file.
- A ``bash`` (or ``sh``, ``shell``) block preceded by
  ``<!-- docs-test: run -->`` runs with ``bash -e -o pipefail``, the virtualenv's ``bin`` first
  on ``PATH``, in the same environment and working directory.
- ``test_*`` functions a block defines are called, their ``phospho_emulator`` /
  ``phospho_emulator_server`` / ``tmp_path`` parameters filled in like pytest fixtures.
- Output claims: a ``print(...)`` call that is a statement of its own (at any depth: in
  ``with``, ``if``, functions...) followed by a comment on the same line claims what it
  prints: ``print(len(vectors))  # 3``. What the call writes (without the final newline;
  output of several lines is one text with newlines) must equal the comment, surrounding
  whitespace aside, where ``...`` stands for any text (even none, even several lines):
  ``print(client)  # PhosphoClient(base_url='...', ...)``. A print that runs several times
  (in a loop) is checked on its first output only. Claims are checked after each block (and
  its ``test_*`` functions); one whose print never ran by the end of the file fails it.
  Prose about a print goes on a comment line of its own, above it; comment lines below a
  print (the way to show output too long for one line) are not checked.

Fences indented inside admonitions, tabs or list items are found too (their indentation is
removed). Line numbers of failures are the Markdown file's own.
"""

from __future__ import annotations

import ast
import asyncio
import bisect
import builtins
import contextlib
import gc
import inspect
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import tokenize
import traceback
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Failures name files relative to the repository when they are in it.
ROOT = Path(__file__).resolve().parents[2]
PYTHON_LANGS = frozenset({"python", "py", "python3"})
SHELL_LANGS = frozenset({"bash", "sh", "shell"})

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<verb>[a-z]+)\b(?P<rest>.*?)(?P<end>-->)?\s*$")


class DocsExampleError(Exception):
    """A marker the collector does not understand, or an example that cannot be run."""


@dataclass(frozen=True)
class Block:
    """One runnable piece of a Markdown file."""

    kind: str  # "python", "setup" (hidden python), "bash"
    line: int  # 1-based line of the first line of code in the Markdown file
    code: str  # dedented source
    skip: str | None = None  # the reason, for a block marked skip
    lang: str = ""

    @property
    def runnable(self) -> bool:
        return self.skip is None


@dataclass
class _Pending:
    marker: str | None = None
    reason: str = ""
    line: int = 0


def parse_markdown(text: str) -> list[Block]:
    """The code blocks and hidden setup blocks of ``text``, in order.

    Python blocks are returned whatever their markers (skipped ones carry ``skip``); bash
    blocks only when marked ``run``. Other fences are passed over, and nothing inside them
    is looked at (a Markdown example of a fence is not a fence).
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    pending = _Pending()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        opening = _FENCE_OPEN.match(line)
        if opening:
            indent = len(opening["indent"].expandtabs(4))
            fence = opening["fence"]
            info = opening["info"].strip()
            lang = _fence_lang(info)
            body: list[str] = []
            j = i + 1
            while j < len(lines):
                candidate = lines[j]
                closing = candidate.strip()
                if (
                    closing
                    and set(closing) == {fence[0]}
                    and len(closing) >= len(fence)
                    and len(candidate) - len(candidate.lstrip()) <= indent + 3
                ):
                    break
                body.append(candidate)
                j += 1
            code = _dedent(body, indent)
            start = i + 2  # 1-based line of the fence's first code line
            marker = pending.marker
            if lang in PYTHON_LANGS:
                if marker not in (None, "skip"):
                    raise DocsExampleError(
                        f"line {i + 1}: `docs-test: {marker}` does not apply to a python block"
                    )
                skip = (pending.reason or "no reason given") if marker == "skip" else None
                blocks.append(Block("python", start, code, skip, lang))
            elif lang in SHELL_LANGS and marker in ("run", "skip"):
                if marker == "run":
                    blocks.append(Block("bash", start, code, None, lang))
            elif marker is not None:
                raise DocsExampleError(
                    f"line {i + 1}: `docs-test: {marker}` is followed by a {lang or 'plain'} "
                    "fence; it applies to the next python block (skip) or bash block (run)"
                )
            pending = _Pending()
            i = j + 1
            continue
        marker_match = _MARKER.match(stripped)
        if marker_match:
            verb = marker_match["verb"]
            rest = marker_match["rest"]
            if verb == "setup":
                start, code, i = _read_setup(lines, i, marker_match)
                blocks.append(Block("setup", start, code, None, "python"))
                continue
            if verb not in ("skip", "run"):
                raise DocsExampleError(f"line {i + 1}: unknown marker `docs-test: {verb}`")
            if marker_match["end"] is None:
                raise DocsExampleError(f"line {i + 1}: a docs-test {verb} marker fits on one line")
            reason = rest.strip()
            if reason.startswith("(") and reason.endswith(")"):
                reason = reason[1:-1].strip()
            pending = _Pending(verb, reason, i + 1)
        elif stripped and pending.marker is not None:
            raise DocsExampleError(
                f"line {pending.line}: `docs-test: {pending.marker}` must be on the line right "
                "before a fence"
            )
        i += 1
    if pending.marker is not None:
        raise DocsExampleError(
            f"line {pending.line}: `docs-test: {pending.marker}` before no fence"
        )
    return blocks


def _fence_lang(info: str) -> str:
    """``python title="x.py"``, ``{.python}``, ``py linenums="1"`` -> the language."""
    if not info:
        return ""
    first = info.split()[0].strip("{}")
    return first.lstrip(".").lower()


def _dedent(body: list[str], indent: int) -> str:
    out = []
    for raw in body:
        expanded = raw.expandtabs(4)
        lead = len(expanded) - len(expanded.lstrip(" "))
        out.append(expanded[min(lead, indent) :])
    return textwrap.dedent("\n".join(out))


def _read_setup(lines: list[str], i: int, match: re.Match[str]) -> tuple[int, str, int]:
    """A setup comment: one line (``<!-- docs-test: setup x = 1 -->``) or several."""
    first = match["rest"]
    if match["end"] is not None:
        return i + 1, textwrap.dedent(first).strip() + "\n", i + 1
    body: list[str] = []
    if first.strip():
        raise DocsExampleError(f"line {i + 1}: put the setup code on the lines after the marker")
    j = i + 1
    while j < len(lines) and lines[j].strip() != "-->":
        if "-->" in lines[j]:
            raise DocsExampleError(f"line {j + 1}: close a setup block with `-->` on its own line")
        body.append(lines[j])
        j += 1
    if j == len(lines):
        raise DocsExampleError(f"line {i + 1}: setup block is never closed with `-->`")
    return i + 2, textwrap.dedent("\n".join(body)), j + 1


# -- running ---------------------------------------------------------------------------------

#: Fixtures a ``test_*`` function of an example may ask for.
FixtureFactory = Callable[[], Any]


@dataclass
class RunReport:
    """What ran, for the tests of the collector itself."""

    ran: list[Block] = field(default_factory=list)
    skipped: list[Block] = field(default_factory=list)
    tests_called: list[str] = field(default_factory=list)
    claims_checked: list[Claim] = field(default_factory=list)


class ExampleFailure(Exception):
    """An example block failed; the message names the file and line and shows the traceback."""


def run_markdown(
    path: Path,
    *,
    fixtures: dict[str, FixtureFactory] | None = None,
    after_test: Callable[[], object] | None = None,
    timeout: float = 120.0,
) -> RunReport:
    """Run the examples of ``path`` in order, in the current directory and environment.

    Raises ``ExampleFailure`` for the first block that fails, or whose printed output is not
    what its comments claim. ``ResourceWarning``s the examples cause (unclosed clients,
    sockets) fail the file too.
    """
    path = path.resolve()
    blocks = parse_markdown(path.read_text(encoding="utf-8"))
    report = RunReport()
    fixtures = fixtures or {}
    printed = _PrintRecorder(str(path))
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = {**vars(builtins), "print": printed.print}
    loop = asyncio.new_event_loop()
    with (
        warnings.catch_warnings(record=True) as caught,
        _as_main(module),
        _deadline(timeout, path),
    ):
        warnings.simplefilter("always", ResourceWarning)
        try:
            for block in blocks:
                if not block.runnable:
                    report.skipped.append(block)
                    continue
                if block.kind == "bash":
                    _run_bash(path, block)
                else:
                    _run_python(
                        path, block, module.__dict__, loop, fixtures, after_test, report, printed
                    )
                report.ran.append(block)
            printed.check(path, report, final=True)
        finally:
            module.__dict__.clear()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
            gc.collect()
    leaks = []
    for warning in caught:
        if issubclass(warning.category, ResourceWarning):
            leaks.append(f"{warning.filename}:{warning.lineno}: {warning.message}")
        else:  # not ours to judge: hand it back to pytest's summary
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if leaks:
        raise ExampleFailure(
            f"{display_name(path)}: the examples leak resources (close clients or use `with`):\n"
            + "\n".join(leaks)
        )
    return report


def _run_python(
    path: Path,
    block: Block,
    namespace: dict[str, Any],
    loop: asyncio.AbstractEventLoop,
    fixtures: dict[str, FixtureFactory],
    after_test: Callable[[], object] | None,
    report: RunReport,
    printed: _PrintRecorder,
) -> None:
    # Padding with newlines makes tracebacks point at the Markdown file's own lines.
    source = "\n" * (block.line - 1) + block.code
    where = f"{display_name(path)}:{block.line}"
    try:
        code = compile(
            source, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
        )
    except SyntaxError as exc:
        raise ExampleFailure(
            f"{where}: the {_describe(block)} does not compile:\n"
            + "".join(traceback.format_exception_only(type(exc), exc))
        ) from None
    printed.expect(find_claims(source))
    before = dict(namespace)
    try:
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            loop.run_until_complete(result)
    except SystemExit as exc:  # a script's `raise SystemExit(main())` that succeeded is fine
        if exc.code not in (0, None):
            raise ExampleFailure(
                f"{where}: the {_describe(block)} exited {exc.code!r}:\n{_format(exc, path)}"
            ) from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ExampleFailure(
            f"{where}: the {_describe(block)} failed:\n{_format(exc, path)}"
        ) from None
    for name, value in list(namespace.items()):
        if not (name.startswith("test_") and inspect.isfunction(value)):
            continue
        if before.get(name) is value or value.__code__.co_filename != str(path):
            continue
        try:
            _call_test(path, name, value, loop, fixtures)
        finally:
            if after_test is not None:
                after_test()
        report.tests_called.append(name)
    printed.check(path, report)


# -- output claims ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """``print(...)  # text``: the print statement's lines in the file, and the comment."""

    line: int  # first line of the print statement
    end_line: int  # its last line, the one with the comment
    text: str  # the comment, without ``#`` and surrounding whitespace

    def matches(self, output: str) -> bool:
        """``...`` stands for any text; the rest is compared without surrounding whitespace."""
        pattern = ".*".join(re.escape(part) for part in self.text.split("..."))
        return re.fullmatch(pattern, output.strip(), re.DOTALL) is not None


def find_claims(source: str) -> list[Claim]:
    """The ``print(...)  # claim`` statements of ``source``, at any depth, in order.

    A claim is a comment that directly follows a print call that is a statement of its own
    (``print(a); x = 1  # ...`` claims nothing). Comments are found with ``tokenize``, so a
    ``#`` inside a string is not one.
    """
    tree = compile(
        source,
        "<claims>",
        "exec",
        flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    tokens = [
        token
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    ]
    starts = [token.start for token in tokens]
    lines = source.splitlines()
    claims = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "print"
            and node.end_lineno is not None
            and node.end_col_offset is not None
        ):
            continue
        # ast columns count UTF-8 bytes, tokenize columns characters.
        end_line = node.end_lineno
        end_col = len(lines[end_line - 1].encode()[: node.end_col_offset].decode())
        after = bisect.bisect_left(starts, (end_line, end_col))
        if after == len(tokens):
            continue
        token = tokens[after]
        if token.type == tokenize.COMMENT and token.start[0] == end_line:
            claims.append(Claim(node.lineno, end_line, token.string[1:].strip()))
    return sorted(claims, key=lambda claim: claim.line)


class _PrintRecorder:
    """The examples' ``print``: writes as the real one does, and keeps the first output of
    each claimed print statement (found by the caller's line) to be checked."""

    def __init__(self, filename: str) -> None:
        self._filename = filename
        self._by_line: dict[int, Claim] = {}
        self._pending: list[Claim] = []
        self._outputs: dict[Claim, str] = {}
        self._lock = threading.Lock()

    def expect(self, claims: list[Claim]) -> None:
        for claim in claims:
            self._pending.append(claim)
            for line in range(claim.line, claim.end_line + 1):
                self._by_line[line] = claim

    def print(self, *values: object, **options: Any) -> None:
        file = options.pop("file", None)
        flush = options.pop("flush", False)
        buffer = io.StringIO()
        builtins.print(*values, **options, file=buffer)  # the real one: same checks, same text
        text = buffer.getvalue()
        frame = sys._getframe(1)
        if frame.f_code.co_filename == self._filename:
            claim = self._by_line.get(frame.f_lineno)
            if claim is not None:
                with self._lock:
                    self._outputs.setdefault(claim, text.removesuffix("\n"))
        builtins.print(text, end="", file=file, flush=flush)

    def check(self, path: Path, report: RunReport, *, final: bool = False) -> None:
        """Checks the claims whose print has run; with ``final``, a claim never run fails."""
        for claim in list(self._pending):
            if claim not in self._outputs:
                if final:
                    raise ExampleFailure(
                        f"{display_name(path)}:{claim.line}: this print never ran, so its "
                        f"comment claims an output nobody sees: # {claim.text}"
                    )
                continue
            output = self._outputs[claim]
            if not claim.matches(output):
                raise ExampleFailure(
                    f"{display_name(path)}:{claim.line}: this print writes something other "
                    f"than what its comment claims\n  claimed: {claim.text}\n  printed: "
                    + output.replace("\n", "\n           ")
                )
            self._pending.remove(claim)
            report.claims_checked.append(claim)


def _call_test(
    path: Path,
    name: str,
    function: Callable[..., Any],
    loop: asyncio.AbstractEventLoop,
    fixtures: dict[str, FixtureFactory],
) -> None:
    where = f"{display_name(path)}:{function.__code__.co_firstlineno}"
    kwargs = {}
    for parameter in inspect.signature(function).parameters:
        if parameter not in fixtures:
            raise ExampleFailure(
                f"{where}: {name}() asks for the fixture {parameter!r}; the docs tests provide "
                f"only {sorted(fixtures)}: mark the block `<!-- docs-test: skip (reason) -->`"
            )
        kwargs[parameter] = fixtures[parameter]()
    try:
        result = function(**kwargs)
        if inspect.iscoroutine(result):
            loop.run_until_complete(result)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ExampleFailure(
            f"{where}: the example test {name}() failed:\n{_format(exc, path)}"
        ) from None


def _run_bash(path: Path, block: Block) -> None:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.code],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ExampleFailure(
            f"{display_name(path)}:{block.line}: the bash block timed out"
        ) from exc
    if result.returncode != 0:
        raise ExampleFailure(
            f"{display_name(path)}:{block.line}: the bash block exited {result.returncode}:\n"
            f"{block.code}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )


def display_name(path: Path) -> str:
    """``docs/langchain.md`` for a page of the repository, else the file's name."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def _describe(block: Block) -> str:
    return "hidden setup block" if block.kind == "setup" else "python block"


def _format(exc: BaseException, path: Path) -> str:
    """The traceback from the example's first frame on (not the collector's own frames)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != str(path):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


@contextlib.contextmanager
def _as_main(module: types.ModuleType) -> Iterator[None]:
    """Examples run as ``__main__`` (as a pasted script would), so pickling their classes
    and functions by reference works, as ``runpy`` does it."""
    module.__dict__["__name__"] = "__main__"
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


@contextlib.contextmanager
def _deadline(seconds: float, path: Path) -> Iterator[None]:
    """Interrupts examples that run past ``seconds`` (main thread, POSIX only)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: types.FrameType | None) -> None:
        raise TimeoutError(f"the examples of {path.name} ran longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
