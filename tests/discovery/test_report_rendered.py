"""The HTML report as a person sees it: Debian's chromium renders it headless, offline,
once: the DOM after rendering and a screenshot, from the same run.

Skipped when no chromium is installed (``.ci/run`` installs it), like tests/docs.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from phospho_embed.discovery import DiscoveryResult, discover_intents
from tests.discovery.conftest import sphere_clusters
from tests.docs.test_rendered import WINDOW, run_chromium


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DiscoveryResult]:
    vectors, labels = sphere_clusters(4, 25, dim=16, noise=0.3, seed=41)
    topics = ["refund my order", "parcel is late", "reset my password", "cancel my plan"]
    texts = [f"{topics[label]} ({i})" for i, label in enumerate(labels)]
    texts[3] = "<script>document.body.innerHTML = 'hacked'</script>"
    days = [f"2024-05-{1 + i % 20:02d}" for i in range(len(texts))]
    found = discover_intents(texts, vectors=vectors, timestamps=days, n_examples=25)
    path = tmp_path_factory.mktemp("report") / "report.html"
    found.report(path)
    return path, found


class _Page(HTMLParser):
    """The rows of the intents table and the images, as rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.images: list[str] = []
        self.text: list[str] = []
        self._table = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", "intents") in attrs:
            self._table = True
        elif tag == "tr" and self._table:
            self.rows += 1
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def rendered(
    chromium: str,
    report: tuple[Path, DiscoveryResult],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path]:
    """The rendered DOM and the screenshot's path."""
    folder = tmp_path_factory.mktemp("rendered")
    png = folder / "report.png"
    uri = report[0].as_uri()
    result = run_chromium(chromium, folder / "profile", "--dump-dom", f"--screenshot={png}", uri)
    assert result.returncode == 0, result.stderr
    assert png.is_file(), result.stderr
    return result.stdout, png


def test_report_renders_the_table_and_the_pictures(
    rendered: tuple[str, Path], report: tuple[Path, DiscoveryResult]
) -> None:
    dom, _ = rendered
    found = report[1]
    page = _Page()
    page.feed(dom)
    assert page.rows == len(found.intents) + 1  # a header row, then one per intent
    assert len(page.images) == 2  # the map and the trend chart
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    text = " ".join(page.text)
    # Shown as text; had it run, the body would hold "hacked" instead of the table above.
    assert "<script>document.body.innerHTML" in text
    assert found.intents[0].name in text


def test_report_screenshot_is_not_blank(rendered: tuple[str, Path]) -> None:
    from matplotlib import image

    pixels = (image.imread(rendered[1])[:, :, :3] * 255).round().astype(np.uint8)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    packed = pixels.reshape(-1, 3).astype(np.int32) @ np.array([65536, 256, 1])
    colours, counts = np.unique(packed, return_counts=True)
    assert len(colours) >= 64, f"only {len(colours)} colours: a blank page?"
    assert counts.max() < 0.95 * counts.sum(), "one colour covers the page"
    # The map: saturated pixels (coloured dots), not only grey text on white.
    saturation = pixels.max(axis=2).astype(int) - pixels.min(axis=2).astype(int)
    assert (saturation > 80).mean() > 0.002, "no coloured dots on screen"
