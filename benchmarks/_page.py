"""The page's prose lives in ``benchmarks/templates/<scenario>.md``; code only computes numbers.

A template file is a series of named blocks, each opened by a line ``<!-- name -->``. A block
is a ``str.format`` template: ``{plan.latency:g}``, ``{rows[phospho-sync].rate:.2f}`` (a row
looked up by its id), ``{ratio:x}`` (a ratio written as ``times`` writes it). Code renders a
block with the values it computed, and picks among blocks where what the page says depends
on the numbers; a literal brace is doubled, as ``str.format`` wants.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"
_MARKER = re.compile(r"^<!-- ([\w.-]+) -->\n", re.MULTILINE)


def percent(value: float) -> str:
    """``0.1234`` -> ``12.3%``."""
    return f"{value:.1%}"


def times(value: float) -> str:
    """A ratio: ``12.345`` -> ``12.3x``, ``0.934`` -> ``0.93x``."""
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def verdict(met: bool) -> str:
    """How the page says whether a goal is met."""
    return "met" if met else "**not met**"


class _Formatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "x":
            return times(value)
        formatted: str = super().format_field(value, format_spec)
        return formatted


_FORMATTER = _Formatter()


@cache
def blocks(template: str) -> dict[str, str]:
    """The named blocks of ``templates/<template>.md``."""
    parts = _MARKER.split((TEMPLATES / f"{template}.md").read_text())
    if parts[0].strip():
        raise ValueError(f"{template}.md: text before its first <!-- name --> marker")
    # Only the blank lines around a block go: a fragment's leading space is part of it.
    return {name: body.strip("\n") for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def render(template: str, block: str, /, **values: Any) -> str:
    """One block filled with ``values``; a missing value raises ``KeyError``."""
    text = _FORMATTER.vformat(blocks(template)[block], (), values)
    # An optional sentence or paragraph rendered empty leaves no space or blank gap behind.
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def fields(text: str) -> Iterator[str]:
    """Every field a template text refers to: ``rows[phospho-sync].rate``, ``plan.latency``."""
    for _, field, _, _ in _FORMATTER.parse(text):
        if field is not None:
            yield field


def row_ids(text: str, collection: str = "rows") -> set[str]:
    """The ids a template text looks up in ``collection``: ``{rows[ID]...}``."""
    pattern = re.compile(rf"^{re.escape(collection)}\[([^\]]+)\]")
    return {match.group(1) for field in fields(text) if (match := pattern.match(field))}


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table, for the tables whose columns depend on the run."""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), lines(rows)])


def lines(rows: Sequence[Sequence[object]]) -> str:
    """A markdown table's rows, below a header written in the template."""
    return "\n".join("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)


@dataclass(frozen=True)
class Goal:
    """A goal a scenario measures: reported on the page, never asserted (noisy machines)."""

    id: str  # "throughput.limit": its statement and measure are blocks "goal.ID", "measured.ID"
    statement: str
    measured: str
    met: bool

    @classmethod
    def from_template(cls, template: str, id: str, met: bool, **values: Any) -> Goal:
        """The goal with its statement and measure rendered from the scenario's template."""
        return cls(
            id,
            render(template, f"goal.{id}", **values),
            render(template, f"measured.{id}", **values),
            met,
        )


def goal_lines(goals: Sequence[Goal]) -> str:
    """The rows of a goals table (its header is in the template)."""
    return lines([[goal.statement, goal.measured, verdict(goal.met)] for goal in goals])


class Section:
    """What a scenario's result gives the page: its section, its goals, its figures."""

    def markdown(self) -> str:
        """The section of docs/benchmarks.md."""
        raise NotImplementedError

    def goals(self) -> list[Goal]:
        """The goals this scenario measures (none unless it says so)."""
        return []

    def write_assets(self, directory: Path) -> list[Path]:
        """Figures the section links to, written into ``directory`` (none unless it says so)."""
        return []
