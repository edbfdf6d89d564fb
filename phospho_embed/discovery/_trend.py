"""Intents over time: periods, counts and shares per period (`trend`), and what changed
between two periods (`drift`).

Timestamps may be ``datetime`` (aware ones are converted to UTC), ``date``, ISO 8601
strings, numpy ``datetime64`` or numbers of seconds since the Unix epoch (UTC). Periods:

======  ======================================  ==================
freq    period                                  label
======  ======================================  ==================
``H``   hour                                    ``2024-05-01T13``
``D``   day                                     ``2024-05-01``
``W``   week starting on Monday (ISO 8601)      ``2024-04-29``
``M``   calendar month                          ``2024-05``
``Q``   calendar quarter                        ``2024-Q2``
``Y``   calendar year                           ``2024``
======  ======================================  ==================
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Times = NDArray[np.datetime64]

Row = TypeVar("Row")

FREQUENCIES = ("H", "D", "W", "M", "Q", "Y")
"""The period lengths `trend` and `drift` accept."""
#: Periods a trend may span: a finer ``freq`` over a long time is almost surely a mistake.
MAX_PERIODS = 10_000
#: z of the two-proportion test that marks an intent as grown or shrunk (95%, two-sided).
DEFAULT_Z = 1.96


class Records(list[Row]):
    """A table as a list of dataclass records, with conversions.

    It is a plain ``list``; `to_dicts` gives plain data for JSON, and `to_pandas` a
    ``pandas.DataFrame`` when pandas is installed (it is not required).
    """

    def to_dicts(self) -> list[dict[str, Any]]:
        """Each record as a ``dict`` of its fields."""
        return [dataclasses.asdict(row) for row in self]  # type: ignore[call-overload]

    def to_pandas(self) -> Any:
        """The records as a ``pandas.DataFrame``, one column per field.

        Raises:
            ImportError: pandas is not installed.
        """
        try:
            pandas = importlib.import_module("pandas")
        except ImportError as error:
            raise ImportError("to_pandas needs pandas: pip install pandas") from error
        return pandas.DataFrame.from_records(self.to_dicts())


@dataclass(frozen=True)
class TrendRow:
    """One intent in one period.

    Attributes:
        period: the period's label (see the module's table).
        intent_id: the discovered intent; -1 for messages in no intent; ``None`` for a
            known intent of gap analysis (then ``name`` is its name).
        name: the intent's name (``"(no intent)"`` for -1).
        count: its messages in the period.
        share: ``count`` over the period's messages (``nan`` for a period without any).
        change: ``count`` minus the previous period's (``None`` in the first period).
        share_change: ``share`` minus the previous period's (``None`` in the first period).
    """

    period: str
    intent_id: int | None
    name: str
    count: int
    share: float
    change: int | None
    share_change: float | None


@dataclass(frozen=True)
class DriftRow:
    """How one intent changed between two periods.

    Attributes:
        intent_id, name: as in `TrendRow`.
        before, after: its messages in each period.
        before_share, after_share: their shares of each period's messages.
        share_change: ``after_share - before_share``.
        z: the two-proportion z statistic of that change (pooled variance).
        status: ``"appeared"`` (none before, significantly more after), ``"vanished"``
            (the reverse), ``"grew"``, ``"shrank"`` (significant: ``|z| >= z``), or
            ``"steady"``.
    """

    intent_id: int | None
    name: str
    before: int
    after: int
    before_share: float
    after_share: float
    share_change: float
    z: float
    status: str


def parse_timestamps(values: Sequence[Any], what: str = "timestamps") -> Times:
    """``values`` as a ``datetime64[s]`` array (UTC, naive).

    Raises:
        ValueError / TypeError: a value that is not a timestamp, named by its index.
    """
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        parsed = values.astype("datetime64[s]")
        if np.isnat(parsed).any():
            raise ValueError(f"{what}[{int(np.argmax(np.isnat(parsed)))}] is NaT")
        return parsed
    out = np.empty(len(values), dtype="datetime64[s]")
    for i, value in enumerate(values):
        out[i] = _one(value, f"{what}[{i}]")
    return out


def _one(value: Any, name: str) -> np.datetime64:
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError(f"{name} is NaT")
        moment: np.datetime64 = value.astype("datetime64[s]")
        return moment
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} is not an ISO 8601 date or time: {value!r}") from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        instant: np.datetime64 = np.datetime64(value, "s")
        return instant
    if isinstance(value, date):
        day: np.datetime64 = np.datetime64(value, "D").astype("datetime64[s]")
        return day
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} is not a finite number of seconds: {value!r}")
        return np.datetime64(math.floor(float(value)), "s")
    raise TypeError(
        f"{name} must be a datetime, date, ISO 8601 string, datetime64 or seconds since the "
        f"epoch, got {type(value).__name__}"
    )


def periods(times: Times, freq: str) -> tuple[NDArray[np.int64], list[str]]:
    """Each timestamp's period as an index into the labels of every period from the first
    to the last (empty ones included, so changes compare consecutive periods).

    Raises:
        ValueError: an unknown ``freq``, or more than `MAX_PERIODS` periods.
    """
    key = freq.upper() if isinstance(freq, str) else freq
    if key not in FREQUENCIES:
        raise ValueError(f"freq must be one of {', '.join(FREQUENCIES)}, got {freq!r}")
    numbers = _period_numbers(times, key)
    first = int(numbers.min())
    count = int(numbers.max()) - first + 1
    if count > MAX_PERIODS:
        raise ValueError(
            f"the timestamps span {count} periods of freq={freq!r} (at most {MAX_PERIODS}): "
            "choose a longer period"
        )
    labels = [_period_label(first + i, key) for i in range(count)]
    return (numbers - first).astype(np.int64), labels


def _period_numbers(times: Times, key: str) -> NDArray[np.int64]:
    if key == "H":
        return times.astype("datetime64[h]").astype(np.int64)
    days = times.astype("datetime64[D]").astype(np.int64)
    if key == "D":
        return days
    if key == "W":
        return (days + 3) // 7  # weeks since Monday 1969-12-29 (1970-01-01 was a Thursday)
    months = times.astype("datetime64[M]").astype(np.int64)
    if key == "M":
        return months
    if key == "Q":
        return months // 3
    return times.astype("datetime64[Y]").astype(np.int64)


def _period_label(number: int, key: str) -> str:
    if key == "H":
        return str(np.datetime64(number, "h"))
    if key == "D":
        return str(np.datetime64(number, "D"))
    if key == "W":
        return str(np.datetime64(number * 7 - 3, "D"))
    if key == "M":
        return str(np.datetime64(number, "M"))
    if key == "Q":
        return f"{1970 + number // 4}-Q{number % 4 + 1}"
    return str(np.datetime64(number, "Y"))


def auto_freq(times: Times) -> str:
    """A period length giving a readable chart: hours up to 3 days, days up to 90, weeks
    up to two years, months beyond."""
    span = (times.max() - times.min()).astype("timedelta64[s]").astype(np.int64) / 86_400
    if span <= 3:
        return "H"
    if span <= 90:
        return "D"
    if span <= 730:
        return "W"
    return "M"


@dataclass(frozen=True)
class Groups:
    """Messages grouped for counting: each message's group and each group's identity."""

    codes: NDArray[np.int64]
    ids: list[int | None]
    names: list[str]


def counts_by_period(groups: Groups, period_of: NDArray[np.int64], n_periods: int) -> Any:
    """A (periods, groups) array of message counts."""
    table = np.zeros((n_periods, len(groups.ids)), dtype=np.int64)
    np.add.at(table, (period_of, groups.codes), 1)
    return table


def trend_rows(groups: Groups, times: Times, freq: str) -> Records[TrendRow]:
    """Counts and shares of every group in every period, with changes (`TrendRow`)."""
    period_of, labels = periods(times, freq)
    table = counts_by_period(groups, period_of, len(labels))
    totals = table.sum(axis=1).tolist()  # Python ints: records hold plain numbers
    rows: Records[TrendRow] = Records()
    for p, label in enumerate(labels):
        for g, (intent_id, name) in enumerate(zip(groups.ids, groups.names, strict=True)):
            count = int(table[p, g])
            share = count / totals[p] if totals[p] else math.nan
            if p == 0:
                change, share_change = None, None
            else:
                previous = int(table[p - 1, g])
                previous_share = previous / totals[p - 1] if totals[p - 1] else math.nan
                change, share_change = count - previous, share - previous_share
            rows.append(TrendRow(label, intent_id, name, count, share, change, share_change))
    return rows


def drift_rows(
    groups: Groups,
    times: Times,
    freq: str,
    before: Any = None,
    after: Any = None,
    z: float = DEFAULT_Z,
) -> Records[DriftRow]:
    """Compare two periods (default: the last two that have messages), largest share
    change first (`DriftRow`).

    Raises:
        ValueError: fewer than two periods with messages, or ``before`` / ``after`` naming
            a period without messages.
    """
    period_of, labels = periods(times, freq)
    table = counts_by_period(groups, period_of, len(labels))
    totals = table.sum(axis=1)
    busy = [p for p in range(len(labels)) if totals[p]]
    if before is None and after is None and len(busy) < 2:
        raise ValueError(
            f"drift needs messages in two periods; with freq={freq!r} they all fall in "
            f"{labels[busy[0]] if busy else 'none'}: choose a shorter period"
        )
    first = _period_index(before, labels, freq, busy[-2] if len(busy) > 1 else busy[0])
    second = _period_index(after, labels, freq, busy[-1])
    for index, role in ((first, "before"), (second, "after")):
        if not totals[index]:
            raise ValueError(f"{role}: period {labels[index]} has no messages")
    rows: Records[DriftRow] = Records()
    n1, n2 = int(totals[first]), int(totals[second])
    for g, (intent_id, name) in enumerate(zip(groups.ids, groups.names, strict=True)):
        a, b = int(table[first, g]), int(table[second, g])
        p1, p2 = a / n1, b / n2
        pooled = (a + b) / (n1 + n2)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        statistic = (p2 - p1) / spread if spread else 0.0
        rows.append(
            DriftRow(intent_id, name, a, b, p1, p2, p2 - p1, statistic, _status(a, b, statistic, z))
        )
    rows.sort(key=lambda row: (-abs(row.share_change), row.name))
    return rows


def _status(before: int, after: int, statistic: float, z: float) -> str:
    if statistic >= z:
        return "appeared" if before == 0 else "grew"
    if statistic <= -z:
        return "vanished" if after == 0 else "shrank"
    return "steady"


def _period_index(value: Any, labels: list[str], freq: str, default: int) -> int:
    """The index of a period given by its label or by any timestamp inside it."""
    if value is None:
        return default
    if isinstance(value, str) and value in labels:
        return labels.index(value)
    moment = parse_timestamps([value], "period")
    label = _period_label(int(_period_numbers(moment, freq.upper())[0]), freq.upper())
    if label not in labels:
        raise ValueError(f"period {value!r} ({label}) is outside the timestamps' range")
    return labels.index(label)
