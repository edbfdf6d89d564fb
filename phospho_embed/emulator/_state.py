"""What the emulator remembers between requests: settings, counters, seeded randomness.

The server's event loop writes here while tests read from their own threads, so every access
goes through one lock and readers only ever see copies.

Requests can outlive a reset (a client gave up on a slow request, the server still sleeps):
epochs keep such stragglers from being counted in, or shifting the fault schedule of, the
test that comes after.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ._settings import EmulatorSettings

# Changing any of these restarts the fault schedule, so that "every 3rd request" counts from
# the configure() call that asked for it.
_SCHEDULE_FIELDS = ("fault", "fault_rate", "fault_every", "seed")


@dataclass(frozen=True)
class EmulatorStats:
    """A consistent snapshot of the emulator's counters (since the last reset).

    Attributes:
        requests: HTTP requests that reached an embeddings endpoint, whatever their outcome.
        by_status: complete responses by status code.
        dropped: connections closed mid-response by the ``"drop"`` fault.
        in_flight: requests being handled right now (a gauge: resets do not zero it).
        peak_in_flight: the most requests handled at once, from arrival to response,
            latency included, counting only requests that arrived since the last reset (a
            straggler of an earlier test does not inflate the next one's peak).
        inputs: how many requests carried each input text, whatever their outcome.
        prompt_tokens: tokens billed, summed over the successful (200) responses.
        cpu_seconds: CPU time (user + system, seconds) of the process serving the emulator
            since the last reset, every thread counted: what serving costs where the client
            shares the machine's cores (an emulator in the client's own process counts the
            client's CPU too).
    """

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    dropped: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    inputs: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    cpu_seconds: float = field(default=0.0, compare=False)  # a measure, not a count

    def to_dict(self, *, include_inputs: bool = True) -> dict[str, Any]:
        """The snapshot as JSON-ready data (``by_status`` keys become strings in JSON)."""
        data = asdict(self)
        if not include_inputs:
            del data["inputs"]
        return data


@dataclass(frozen=True)
class Ticket:
    """What a request is given on arrival and keeps until it is answered.

    Attributes:
        settings: the settings it is served under, even if they change meanwhile.
        epoch: the counters it belongs to (a reset starts new ones).
        schedule: the fault schedule it takes a turn in (configure may start a new one).
    """

    settings: EmulatorSettings
    epoch: int
    schedule: int


class EmulatorState:
    """Settings and counters shared by the app, the ``Emulator`` object and its users."""

    _epoch: int
    _schedule_epoch: int
    _requests: int
    _by_status: Counter[int]
    _dropped: int
    _peak_in_flight: int
    _in_flight_since_reset: int
    _inputs: Counter[str]
    _prompt_tokens: int
    _fault_step: int
    _fault_rng: random.Random
    _delay_rng: random.Random

    def __init__(self, settings: EmulatorSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        # Gauges: they describe requests still running, so resets leave them alone.
        self._in_flight = 0
        self._admitted = 0
        self._epoch = 0
        self._schedule_epoch = 0
        self._zero_counters()
        self._restart_schedule()

    # -- settings ---------------------------------------------------------------------------

    @property
    def settings(self) -> EmulatorSettings:
        """The current settings (immutable, so a request can keep using the one it read)."""
        return self._settings

    def configure(self, changes: dict[str, Any]) -> EmulatorSettings:
        """Apply ``changes`` to the current settings; invalid changes leave them untouched."""
        with self._lock:
            old, new = self._settings, replace(self._settings, **changes)
            self._settings = new
            if any(getattr(new, name) != getattr(old, name) for name in _SCHEDULE_FIELDS):
                self._restart_schedule()
            return new

    def reset(self, settings: EmulatorSettings) -> None:
        """Install ``settings`` and zero every counter."""
        with self._lock:
            self._settings = settings
            self._zero_counters()
            self._restart_schedule()

    def reset_counters(self) -> None:
        """Zero the counters and restart the fault schedule; keep the settings."""
        with self._lock:
            self._zero_counters()
            self._restart_schedule()

    def snapshot(self) -> EmulatorStats:
        """Copy the counters, all taken at the same instant."""
        with self._lock:
            return EmulatorStats(
                requests=self._requests,
                by_status=dict(sorted(self._by_status.items())),
                dropped=self._dropped,
                in_flight=self._in_flight,
                peak_in_flight=self._peak_in_flight,
                inputs=dict(self._inputs),
                prompt_tokens=self._prompt_tokens,
                cpu_seconds=time.process_time() - self._cpu_at_reset,
            )

    # -- one request's life -----------------------------------------------------------------

    def arrived(self, texts: list[str]) -> Ticket:
        """Count a request from the moment it reaches an embeddings endpoint.

        Everything the request will read (settings, counters, fault schedule) is taken here,
        at once, so that a reset while it runs cannot leave it half in the old world.
        """
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._in_flight_since_reset += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight_since_reset)
            self._inputs.update(texts)
            return Ticket(self._settings, self._epoch, self._schedule_epoch)

    def finished(self, ticket: Ticket, status: int | None, prompt_tokens: int) -> None:
        """Count a request's end: its status, or ``None`` when its connection was dropped.

        Only the in-flight gauge hears about requests that arrived before the last reset.
        """
        with self._lock:
            self._in_flight -= 1
            if ticket.epoch != self._epoch:
                return
            self._in_flight_since_reset -= 1
            if status is None:
                self._dropped += 1
                return
            self._by_status[status] += 1
            if status == 200:
                self._prompt_tokens += prompt_tokens

    def try_admit(self, limit: int | None) -> bool:
        """Take one of ``limit`` serving slots; ``False`` when all are taken."""
        with self._lock:
            if limit is not None and self._admitted >= limit:
                return False
            self._admitted += 1
            return True

    def release(self) -> None:
        """Give back the slot taken by ``try_admit``."""
        with self._lock:
            self._admitted -= 1

    def draw_delay(self, settings: EmulatorSettings) -> float:
        """Seconds to wait before answering: the latency, spread by the jitter."""
        if settings.jitter == 0:
            return float(settings.latency)
        low = max(0.0, settings.latency - settings.jitter)
        with self._lock:
            return self._delay_rng.uniform(low, settings.latency + settings.jitter)

    def draw_fault(self, ticket: Ticket) -> str | None:
        """The fault to inject into the request now at the fault step, if any."""
        settings = ticket.settings
        always = settings.fault_every == 0 and settings.fault_rate == 0
        with self._lock:
            if ticket.schedule != self._schedule_epoch:
                # A straggler from before a reset or a schedule change: it must not take a
                # turn (or a random draw) meant for the requests of the new schedule.
                return settings.fault_kinds[0] if always and settings.fault_kinds else None
            self._fault_step += 1
            if settings.fault is None:
                return None
            if not always:
                by_count = settings.fault_every > 0 and self._fault_step % settings.fault_every == 0
                # Drawn on every request, so the sequence of outcomes depends only on the seed.
                by_chance = (
                    settings.fault_rate > 0 and self._fault_rng.random() < settings.fault_rate
                )
                if not (by_count or by_chance):
                    return None
            kinds = settings.fault_kinds
            return kinds[0] if len(kinds) == 1 else self._fault_rng.choice(kinds)

    # -- helpers (lock held) ----------------------------------------------------------------

    def _zero_counters(self) -> None:
        self._epoch += 1
        self._requests = 0
        self._by_status = Counter()
        self._dropped = 0
        self._in_flight_since_reset = 0
        self._peak_in_flight = 0
        self._inputs = Counter()
        self._prompt_tokens = 0
        self._cpu_at_reset = time.process_time()

    def _restart_schedule(self) -> None:
        self._schedule_epoch += 1
        self._fault_step = 0
        # Two generators, so that changing the latency does not shift which requests fail.
        # Test scheduling, not security: a seeded, reproducible generator is the point.
        self._fault_rng = random.Random(self._settings.seed)  # noqa: S311
        self._delay_rng = random.Random(f"delay:{self._settings.seed}")  # noqa: S311
