"""Progress on stderr: a bar (tqdm, when installed) on a terminal, a few plain lines elsewhere.

A bar redraws itself with carriage returns, which a terminal overwrites and a log file keeps:
redirected to a file or a pipe, stderr gets at most one line per tenth of the work instead.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

#: Plain progress lines (stderr is not a terminal): one each time this share more is done.
PLAIN_STEP = 0.1


class Progress:
    """Counts records done out of ``total``; shows them when ``enabled``.

    On a terminal it draws a tqdm bar (if tqdm is installed); elsewhere it prints a plain
    line, ``embedding: 120/1,200 (10%)``, each time another tenth is done.

    ``advance`` is called from the client's worker threads; after ``close`` it does nothing,
    since requests still in flight after Ctrl-C report in late.
    """

    def __init__(
        self, total: int, *, initial: int = 0, enabled: bool = True, desc: str = "embedding"
    ) -> None:
        self._lock = threading.Lock()
        self._bar: Any = None
        self._plain = False
        self._total, self._done, self._desc = total, initial, desc
        self._next_line = self._next_step(initial)
        if not enabled:
            return
        if not _is_terminal(sys.stderr):
            self._plain = total > 0
            return
        try:
            from tqdm import tqdm
        except ImportError:  # the 'progress' extra is optional: no bar then
            return
        self._bar = tqdm(
            total=total,
            initial=initial,
            unit="text",
            desc=desc,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def advance(self, count: int = 1) -> None:
        """``count`` more records are done (embedded, failed or skipped)."""
        with self._lock:
            self._done += count
            if self._bar is not None:
                self._bar.update(count)
            elif self._plain and self._done >= self._next_line:
                self._next_line = self._next_step(self._done)
                share = self._done / self._total
                print(
                    f"{self._desc}: {self._done:,}/{self._total:,} ({share:.0%})",
                    file=sys.stderr,
                    flush=True,
                )

    def write(self, message: str) -> None:
        """Print a line on stderr without breaking the bar."""
        with self._lock:
            if self._bar is not None:
                self._bar.write(message, file=sys.stderr)
            else:
                print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Finish the bar; later calls to `advance` are ignored."""
        with self._lock:
            self._plain = False
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _next_step(self, done: int) -> int:
        """The count at which the next plain line is due: the next multiple of a tenth."""
        step = max(1, math.ceil(self._total * PLAIN_STEP))  # so at most 1 / PLAIN_STEP lines
        return (done // step + 1) * step


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
