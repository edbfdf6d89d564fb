"""What every benchmark scenario needs: an emulator in its own process, and markdown output."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version


@contextmanager
def emulator_process(**settings: object) -> Iterator[str]:
    """Run ``python -m phospho_embed.emulator`` on a free 127.0.0.1 port; yield its base URL.

    A separate process, so the emulator's CPU never counts as the client's.
    ``settings`` become flags: ``latency=0.2`` -> ``--latency 0.2``.
    """
    command = [sys.executable, "-m", "phospho_embed.emulator", "--port", "0"]
    for name, value in settings.items():
        if value is not None:
            command += [f"--{name.replace('_', '-')}", str(value)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our own module
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "phospho emulator listening on http://..."
        if "listening on " not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def percent(value: float) -> str:
    """``0.1234`` -> ``12.3%``."""
    return f"{value:.1%}"


def machine() -> str:
    """One paragraph on where the numbers come from."""
    packages = []
    for name in ("phospho-embed", "httpx", "numpy", "langchain-core", "llama-index-core"):
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}; "
        f"Python {platform.python_version()}; " + ", ".join(packages) + "."
    )
