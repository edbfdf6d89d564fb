"""The emulator's knobs: one immutable, validated settings object.

Each knob is spelled once, as a field of `EmulatorSettings`; its command-line option
(``--name-with-dashes``) is generated from the field by ``cli.py``, with the help text and
section the field's metadata holds (`Option`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from ._vectors import VECTORS_ENV, VectorKind, VectorsSetting, default_vectors, resolve_vectors

FAULTS: tuple[str, ...] = (
    "429",
    "429-bare",
    "500",
    "502",
    "503",
    "504",
    "drop",
    "malformed",
    "slow",
)
"""The fault kinds ``EmulatorSettings.fault`` accepts (alone, or several joined by commas)."""

API_KEY_ENV = "PHOSPHO_EMULATOR_API_KEY"
"""Environment variable the command line reads for the required API key when ``--api-key``
is not given."""


@dataclass(frozen=True)
class Option:
    """How a setting appears on the command line; kept in its field's metadata.

    The flag is the field's name with dashes, and the value's type (or choices, or a switch
    for a bool) comes from the field's annotation.

    Attributes:
        help: the option's help; ``%(default)s`` stands for the setting's default.
        group: the section of ``--help`` it is listed in: ``"behaviour"`` or ``"faults"``.
        metavar: the value's name in ``--help``, when the flag's own would mislead.
        env: an environment variable the command line reads when the option is not given.
    """

    help: str
    group: Literal["behaviour", "faults"] = "behaviour"
    metavar: str | None = None
    env: str | None = None


def _option(help: str, **details: Any) -> dict[str, Option]:
    """A field's metadata holding its command-line `Option`."""
    return {"option": Option(help, **details)}


@dataclass(frozen=True)
class EmulatorSettings:
    """How the emulator behaves. Every value is checked on construction (``ValueError``).

    Frozen so that a request handler can read one consistent snapshot of all the knobs even
    while another thread calls ``Emulator.configure``; change settings with
    ``dataclasses.replace`` or ``Emulator.configure``.

    Attributes:
        api_key: the bearer token every request must carry (else 401); ``None`` accepts any.
        dimensions: length of the returned vectors (semantic vectors: 64, 128, 256, or any
            size above 256).
        vectors: ``"semantic"`` (a small offline embedding model: paraphrases score high),
            ``"lexical"`` (hashed words: only shared wording scores high) or ``"auto"``
            (semantic when the model is installed, ``pip install 'phospho-embed[semantic]'``,
            else lexical). Default: ``$PHOSPHO_EMULATOR_VECTORS``, else ``"auto"``.
        latency: seconds each admitted request waits before it is answered.
        jitter: spreads the wait uniformly over ``[max(0, latency - jitter), latency + jitter]``
            (seeded random generator).
        fault: the failure to inject, one of ``FAULTS``: ``"429"`` (with ``Retry-After`` when
            ``retry_after`` is set), ``"429-bare"`` (never with it), ``"500"``, ``"502"``,
            ``"503"``, ``"504"``, ``"drop"`` (connection closed mid-response),
            ``"malformed"`` (a 200 whose body is not the documented shape) or ``"slow"`` (a
            200 after ``slow_latency`` seconds); or several joined by commas
            (``"429,500,drop"``), one of which is drawn each time a fault is injected.
        fault_rate: probability that a request gets the fault (seeded random generator).
        fault_every: inject the fault into every Nth request reaching the fault step (N, 2N, ...).
            With ``fault`` set and both ``fault_rate`` and ``fault_every`` at 0, every request
            gets the fault; with both set, a request gets it when either says so.
        retry_after: seconds sent as ``Retry-After`` with every 429 (injected or from the cap);
            ``None`` sends no header.
        slow_latency: the extra seconds a ``"slow"`` fault waits before answering.
        max_in_flight: requests served at once; one more is answered 429 at once.
        billing_required: answer 402 as an account without a payment method would.
        seed: seeds the random generators of ``jitter`` and ``fault_rate``.
        vector_kind: what ``vectors`` resolved to when the settings were made:
            ``"semantic"`` or ``"lexical"`` (not an argument).
    """

    # repr=False: keys stay out of reprs and logs, even fake ones.
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata=_option(
            f"bearer token requests must carry, else 401 (default: ${API_KEY_ENV}, "
            "or accept any token)",
            env=API_KEY_ENV,
        ),
    )
    dimensions: int = field(
        default=1536, metadata=_option("length of the vectors (default: %(default)s)")
    )
    vectors: VectorsSetting = field(
        default_factory=default_vectors,
        metadata=_option(
            "'semantic' (a small offline embedding model: paraphrases score high), "
            "'lexical' (hashed words: only shared wording scores high) or 'auto' (semantic "
            f"when installed, else lexical) (default: ${VECTORS_ENV}, else auto)"
        ),
    )
    latency: float = field(
        default=0.0, metadata=_option("seconds to wait per request (default: %(default)s)")
    )
    jitter: float = field(
        default=0.0,
        metadata=_option(
            "spread the wait uniformly over latency +/- jitter seconds (default: %(default)s)"
        ),
    )
    fault: str | None = field(
        default=None,
        metadata=_option(
            f"failure to inject, one of {', '.join(FAULTS)}: an HTTP status ('429-bare': "
            "without Retry-After), 'drop' (connection closed mid-response), 'malformed' (200 "
            "with a body of the wrong shape) or 'slow' (200 after --slow-latency); several "
            "joined by commas are drawn at random; alone, every request gets it",
            group="faults",
            metavar="KIND[,KIND...]",
        ),
    )
    fault_rate: float = field(
        default=0.0,
        metadata=_option(
            "probability that a request gets the fault (default: %(default)s)", group="faults"
        ),
    )
    fault_every: int = field(
        default=0,
        metadata=_option(
            "inject the fault into every Nth request (default: %(default)s)", group="faults"
        ),
    )
    retry_after: float | None = field(
        default=None,
        metadata=_option(
            "seconds sent as Retry-After with 429 answers (default: no header)", group="faults"
        ),
    )
    slow_latency: float = field(
        default=5.0,
        metadata=_option(
            "seconds a 'slow' fault waits before answering (default: %(default)s)",
            group="faults",
        ),
    )
    max_in_flight: int | None = field(
        default=None,
        metadata=_option("requests served at once; more get 429 at once (default: no limit)"),
    )
    billing_required: bool = field(
        default=False,
        metadata=_option("answer 402, as for an account without a payment method"),
    )
    seed: int = field(
        default=0,
        metadata=_option(
            "seed of the random jitter and fault rate (default: %(default)s)", group="faults"
        ),
    )
    # "auto" resolved once, when the settings are made: what the server sends.
    vector_kind: VectorKind = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ValueError("api_key must be a non-empty string, or None to accept any token")
        _check_int("dimensions", self.dimensions, minimum=1)
        object.__setattr__(self, "vector_kind", resolve_vectors(self.vectors, self.dimensions))
        _check_seconds("latency", self.latency)
        _check_seconds("jitter", self.jitter)
        if self.fault is not None and (
            not isinstance(self.fault, str) or not set(self.fault_kinds) <= set(FAULTS)
        ):
            allowed = ", ".join(repr(fault) for fault in FAULTS)
            raise ValueError(
                f"fault must be None, or one or more (comma-separated) of {allowed}, "
                f"got {self.fault!r}"
            )
        _check_seconds("slow_latency", self.slow_latency)
        if not _is_number(self.fault_rate) or not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be a probability in [0, 1], got {self.fault_rate!r}")
        _check_int("fault_every", self.fault_every, minimum=0)
        if self.retry_after is not None:
            _check_seconds("retry_after", self.retry_after)
        if self.max_in_flight is not None:
            _check_int("max_in_flight", self.max_in_flight, minimum=1)
        if not isinstance(self.billing_required, bool):
            raise ValueError(f"billing_required must be a bool, got {self.billing_required!r}")
        _check_int("seed", self.seed, minimum=None)

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        """The kinds ``fault`` names, in order (empty without a fault)."""
        if not self.fault:
            return ()
        return tuple(kind.strip() for kind in self.fault.split(","))

    @property
    def retry_after_header(self) -> str | None:
        """``retry_after`` as a ``Retry-After`` value: ``"1"`` for 1.0, ``"0.05"`` for 0.05."""
        if self.retry_after is None:
            return None
        if float(self.retry_after).is_integer():
            return str(int(self.retry_after))
        # Fixed notation: repr() would give "1e-05", which no client parses as seconds.
        return f"{self.retry_after:.6f}".rstrip("0").rstrip(".")


class SettingsChanges(TypedDict, total=False):
    """Keyword arguments accepted by ``Emulator(...)``, ``configure`` and ``reset``.

    The fields of `EmulatorSettings` again, because a type checker cannot derive a TypedDict
    from a dataclass; a test keeps the two equal.
    """

    api_key: str | None
    dimensions: int
    vectors: VectorsSetting
    latency: float
    jitter: float
    fault: str | None
    fault_rate: float
    fault_every: int
    retry_after: float | None
    slow_latency: float
    max_in_flight: int | None
    billing_required: bool
    seed: int


def _is_number(value: object) -> bool:
    # bool is an int subclass, but latency=True is a mistake, not one second.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(name: str, value: object, *, minimum: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def _check_seconds(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
