"""The map's intent colours never look like "no intent" (grey) or "known intent" (pale blue)."""

from __future__ import annotations

import colorsys

import matplotlib
import numpy as np

from phospho_embed.discovery._plot import _KNOWN_COLOUR, _OUTLIER_COLOUR, _colours


def test_intent_colours_are_neither_grey_nor_the_known_blue() -> None:
    palette = _colours(matplotlib.colormaps)
    reserved = [matplotlib.colors.to_rgb(c) for c in (_OUTLIER_COLOUR, _KNOWN_COLOUR)]

    assert len(palette) == 17
    for rgb in palette:
        assert colorsys.rgb_to_hls(*rgb)[2] > 0.25, rgb  # saturated: not a grey
        for other in reserved:
            assert np.abs(np.asarray(rgb) - np.asarray(other)).max() > 0.1, (rgb, other)
