"""How well a classifier does on labelled texts: `IntentReport` and `IntentStats`."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class IntentStats:
    """Precision and recall of one intent on labelled texts.

    Attributes:
        precision: share of the texts given this intent that expected it (``nan`` when
            none was given it).
        recall: share of the texts expecting this intent that got it (``nan`` when none
            expected it).
        support: number of texts expecting this intent.
    """

    precision: float
    recall: float
    support: int


@dataclass(frozen=True)
class IntentReport:
    """How well a classifier does on labelled texts (a ``None`` label: out of topic).

    Shares are fractions between 0 and 1, ``nan`` when their denominator is zero.

    Attributes:
        size: number of texts.
        accuracy: share of exact matches, out of topic counted as a class of its own.
        on_topic_accuracy: accuracy on the texts that have an intent (rejecting one as out
            of topic counts as wrong).
        out_of_topic_recall: share of the out-of-topic texts that were rejected.
        out_of_topic_precision: share of the rejected texts that were out of topic.
        per_intent: the `IntentStats` of each intent.
        confusions: the ten most frequent mistakes, ``(expected, predicted, count)``, with
            ``None`` for out of topic.
        threshold: the global threshold evaluated (``None``: none).
        thresholds: the per-intent thresholds evaluated.
        margin: the top-two margin evaluated (``None``: none).
    """

    size: int
    accuracy: float
    on_topic_accuracy: float
    out_of_topic_recall: float
    out_of_topic_precision: float
    per_intent: dict[str, IntentStats]
    confusions: list[tuple[str | None, str | None, int]]
    threshold: float | None
    thresholds: dict[str, float] = field(default_factory=dict)
    margin: float | None = None

    def __str__(self) -> str:
        lines = [
            f"{self.size} texts: accuracy {self.accuracy:.1%}, "
            f"on-topic accuracy {self.on_topic_accuracy:.1%}, "
            f"out-of-topic recall {self.out_of_topic_recall:.1%}, "
            f"precision {self.out_of_topic_precision:.1%}",
        ]
        threshold = "none" if self.threshold is None else f"{self.threshold:.4f}"
        margin = "none" if self.margin is None else f"{self.margin:.4f}"
        lines.append(
            f"threshold {threshold}, {len(self.thresholds)} per-intent thresholds, margin {margin}"
        )
        for expected, predicted, count in self.confusions[:5]:
            lines.append(f"  {count} x {_name(expected)} -> {_name(predicted)}")
        return "\n".join(lines)

    # Deprecated names, kept while callers outside this package move to the new ones.

    @property
    def oos_recall(self) -> float:
        """Deprecated: `out_of_topic_recall`."""
        _renamed("oos_recall", "out_of_topic_recall")
        return self.out_of_topic_recall

    @property
    def oos_precision(self) -> float:
        """Deprecated: `out_of_topic_precision`."""
        _renamed("oos_precision", "out_of_topic_precision")
        return self.out_of_topic_precision

    @property
    def in_scope_accuracy(self) -> float:
        """Deprecated: `on_topic_accuracy`."""
        _renamed("in_scope_accuracy", "on_topic_accuracy")
        return self.on_topic_accuracy


def build_report(
    expected: list[str | None],
    predicted: list[str | None],
    intents: list[str],
    *,
    threshold: float | None,
    thresholds: Mapping[str, float],
    margin: float | None,
) -> IntentReport:
    """The report of ``predicted`` against ``expected`` (``None``: out of topic), both in
    text order, for a classifier of ``intents`` with the given rejection settings."""
    pairs = list(zip(expected, predicted, strict=True))
    on_topic = [(e, p) for e, p in pairs if e is not None]
    out_of_topic = [(e, p) for e, p in pairs if e is None]
    rejected = [(e, p) for e, p in pairs if p is None]
    per_intent: dict[str, IntentStats] = {}
    for name in intents:
        true_positive = sum(1 for e, p in pairs if e == name and p == name)
        predicted_n = sum(1 for _, p in pairs if p == name)
        support = sum(1 for e, _ in pairs if e == name)
        per_intent[name] = IntentStats(
            precision=_ratio(true_positive, predicted_n),
            recall=_ratio(true_positive, support),
            support=support,
        )
    mistakes = Counter((e, p) for e, p in pairs if e != p)
    return IntentReport(
        size=len(pairs),
        accuracy=_ratio(sum(1 for e, p in pairs if e == p), len(pairs)),
        on_topic_accuracy=_ratio(sum(1 for e, p in on_topic if e == p), len(on_topic)),
        out_of_topic_recall=_ratio(sum(1 for _, p in out_of_topic if p is None), len(out_of_topic)),
        out_of_topic_precision=_ratio(sum(1 for e, _ in rejected if e is None), len(rejected)),
        per_intent=per_intent,
        confusions=[(e, p, n) for (e, p), n in mistakes.most_common(10)],
        threshold=threshold,
        thresholds=dict(thresholds),
        margin=margin,
    )


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def _name(intent: str | None) -> str:
    return "(out of topic)" if intent is None else intent


def _renamed(old: str, new: str) -> None:
    warnings.warn(
        f"IntentReport.{old} is deprecated: use IntentReport.{new}",
        DeprecationWarning,
        stacklevel=3,
    )
