"""Run the benchmarks and write docs/benchmarks.md: ``python -m benchmarks [--quick]``.

Each scenario is a module with plans ``FULL`` and ``QUICK`` and ``run(plan)``, which returns
a `Section`: its typed rows, its part of the page and the goals it measures (reported, never
asserted). The page's prose is in benchmarks/templates/; the page is generated, never edited
by hand.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import (
    clinc150,
    dask_scale,
    discovery,
    overhead,
    scaling,
    throttling,
    throughput,
    vectors,
)
from benchmarks._harness import machine
from benchmarks._page import Section, goal_lines, render

#: name -> (run, its full plan, its quick plan), in the page's order.
SCENARIOS: dict[str, tuple[Callable[[Any], Section], object, object]] = {
    "throughput": (throughput.run, throughput.FULL, throughput.QUICK),
    "overhead": (overhead.run, overhead.FULL, overhead.QUICK),
    "scaling": (scaling.run, scaling.FULL, scaling.QUICK),
    "throttling": (throttling.run, throttling.FULL, throttling.QUICK),
    "dask": (dask_scale.run, dask_scale.FULL, dask_scale.QUICK),
    "clinc150": (clinc150.run, clinc150.FULL, clinc150.QUICK),
    "discovery": (discovery.run, discovery.FULL, discovery.QUICK),
    "vectors": (vectors.run, vectors.FULL, vectors.QUICK),
}
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def page(sections: list[Section], stamp: str, seconds: float, quick: bool) -> str:
    """The whole page: the header, every goal measured, then each section in turn."""
    goals = [goal for section in sections for goal in section.goals()]
    return render(
        "page",
        "page",
        stamp=stamp,
        mode=render("page", "quick") if quick else "",
        seconds=seconds,
        machine=machine(),
        goals=render("page", "goals", goals=goal_lines(goals)) if goals else "",
        sections="\n\n".join(section.markdown() for section in sections),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios and write the page (and its figures)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small smoke run of everything")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="scenarios to run")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"where to write the page (default: {DEFAULT_OUTPUT}; --quick: stdout); "
        "figures go next to it",
    )
    args = parser.parse_args(argv)
    sections: list[Section] = []
    run_started = time.perf_counter()
    for name in args.only or SCENARIOS:
        run, full, quick = SCENARIOS[name]
        print(f"running {name}...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        sections.append(run(quick if args.quick else full))
        print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    seconds = time.perf_counter() - run_started
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = page(sections, stamp, seconds, args.quick)
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    if output is None:
        print(text)
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    for section in sections:
        for path in section.write_assets(output.parent):
            print(f"wrote {path}", file=sys.stderr)
    output.write_text(text + "\n")
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
