"""Pictures with matplotlib: the map of messages coloured by intent, and intents over time.

Figures are built with ``matplotlib.figure.Figure`` and its Agg canvas, never with pyplot:
nothing opens a window or changes the global backend, and it works on a server without a
display.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from phospho_embed.discovery._deps import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

#: Colours of intents (cycled): tab20's strong colours, then its pale ones, none of them grey
#: or pale blue; messages in no intent are grey, in a known intent pale blue.
_PALETTE = "tab20"
_OUTLIER_COLOUR = "#b0b0b0"
#: tab20's pale blue (1), grey (14) and pale grey (15): too close to the two colours above.
_RESERVED = frozenset({1, 14, 15})
_KNOWN_COLOUR = "#c6dbef"
#: Longest intent name written on the map.
_LABEL_LENGTH = 32


def project_2d(unit: NDArray[np.float32], fit_rows: NDArray[np.int64], random_state: int) -> Any:
    """The rows of ``unit`` (n, dim) projected on their first two principal components
    (scikit-learn's PCA fitted on ``fit_rows``): an (n, 2) array. Deterministic."""
    if unit.shape[1] < 2 or unit.shape[0] < 2:
        return np.zeros((unit.shape[0], 2), dtype=np.float32)
    decomposition = require("sklearn.decomposition", "the intent map")
    pca = decomposition.PCA(n_components=2, svd_solver="randomized", random_state=random_state)
    pca.fit(unit[fit_rows])
    return pca.transform(unit)


def map_figure(
    points: NDArray[np.floating[Any]],
    labels: NDArray[np.int64],
    names: Sequence[str],
    *,
    title: str,
    named: int = 20,
) -> Figure:
    """Scatter ``points`` (m, 2) coloured by ``labels`` (m,): an intent's id, -1 for no
    intent (grey), -2 for a known intent of gap analysis (pale blue); the ``named`` largest
    intents' names are written at their members' median position."""
    figure_module = require("matplotlib.figure", "the intent map")
    effects = require("matplotlib.patheffects", "the intent map")
    colormaps = require("matplotlib", "the intent map").colormaps
    figure: Figure = figure_module.Figure(figsize=(10, 7.5), dpi=100)
    axes = figure.add_subplot()
    palette = _colours(colormaps)
    # Dots shrink as they multiply: a few hundred stay visible, tens of thousands stay apart.
    size = float(np.clip(3000 / max(1, len(points)), 4, 30))
    for value, colour in ((-2, _KNOWN_COLOUR), (-1, _OUTLIER_COLOUR)):
        background = labels == value
        if background.any():
            x, y = points[background].T
            axes.scatter(x, y, s=size * 0.7, c=colour, alpha=0.5, linewidths=0)
    inside = labels >= 0
    if inside.any():
        colours = palette[labels[inside] % len(palette)]
        x, y = points[inside].T
        axes.scatter(x, y, s=size, c=colours, alpha=0.8, linewidths=0)
    outline = [effects.withStroke(linewidth=3, foreground="white")]
    for intent in range(min(named, len(names))):
        members = points[labels == intent]
        if not len(members):
            continue
        x, y = np.median(members, axis=0)
        axes.text(
            x,
            y,
            _shorten(names[intent]),
            fontsize=8,
            ha="center",
            va="center",
            color="black",
            path_effects=outline,
        )
    axes.set_title(title)
    axes.set_xlabel("first principal component")
    axes.set_ylabel("second principal component")
    axes.set_xticks([])
    axes.set_yticks([])
    figure.tight_layout()
    return figure


def trend_figure(
    periods: Sequence[str],
    shares: NDArray[np.floating[Any]],
    names: Sequence[str],
    *,
    title: str,
) -> Figure:
    """Lines of ``shares`` (periods, series) over ``periods``, one per name."""
    figure_module = require("matplotlib.figure", "the trend chart")
    colormaps = require("matplotlib", "the trend chart").colormaps
    figure: Figure = figure_module.Figure(figsize=(10, 4.5), dpi=100)
    axes = figure.add_subplot()
    palette = _colours(colormaps)
    x = np.arange(len(periods))
    for series, name in enumerate(names):
        axes.plot(
            x,
            shares[:, series] * 100,
            marker="o",
            markersize=3,
            color=palette[series % len(palette)],
            label=_shorten(name),
        )
    step = max(1, len(periods) // 12)
    axes.set_xticks(x[::step], [periods[i] for i in x[::step]], rotation=30, ha="right")
    axes.set_ylabel("share of messages (%)")
    axes.set_title(title)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (Agg)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _colours(colormaps: Any) -> NDArray[np.float64]:
    """tab20's colours as rows of RGB, the strong ones first (the pale ones are hard to
    see on white, so they come only after the strong ones), without its greys (grey means
    no intent) and its pale blue (pale blue means a known intent): 17 colours."""
    colours = np.asarray(colormaps[_PALETTE].colors, dtype=np.float64)
    kept = [i for i in range(len(colours)) if i not in _RESERVED]
    reordered: NDArray[np.float64] = colours[sorted(kept, key=lambda i: (i % 2, i))]
    return reordered


def _shorten(name: str) -> str:
    return name if len(name) <= _LABEL_LENGTH else name[: _LABEL_LENGTH - 1] + "\u2026"
