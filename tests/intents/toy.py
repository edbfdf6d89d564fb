"""Hand-made vectors, easy to reason about: intents on the axes of a small space."""

from __future__ import annotations

import math


def unit(*values: float) -> list[float]:
    """``values`` scaled to length 1."""
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


# Three intents on the axes of a 3-d space.
AXES = {"a": [unit(1, 0, 0)], "b": [unit(0, 1, 0)], "c": [unit(0, 0, 1)]}
