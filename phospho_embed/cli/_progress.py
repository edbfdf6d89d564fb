"""A progress bar on stderr (tqdm, when installed) that messages can be printed around."""

from __future__ import annotations

import sys
import threading
from typing import Any


class Progress:
    """Counts records done out of ``total``; draws a tqdm bar when ``enabled`` and available.

    ``advance`` is called from the client's worker threads; after ``close`` it does nothing,
    since requests still in flight after Ctrl-C report in late.
    """

    def __init__(self, total: int, *, initial: int = 0, enabled: bool = True) -> None:
        self._lock = threading.Lock()
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:  # the 'progress' extra is optional: no bar then
                pass
            else:
                self._bar = tqdm(
                    total=total,
                    initial=initial,
                    unit="text",
                    desc="embedding",
                    file=sys.stderr,
                    dynamic_ncols=True,
                )

    def advance(self, count: int = 1) -> None:
        """``count`` more records are done (embedded, failed or skipped)."""
        with self._lock:
            if self._bar is not None:
                self._bar.update(count)

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
            if self._bar is not None:
                self._bar.close()
                self._bar = None
