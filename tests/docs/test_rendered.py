"""The built site, as a person sees it: Debian's chromium renders the home page headless.

The site is built with ``mkdocs build --strict`` into a temporary directory, or taken from
``DOCS_SITE_DIR`` (``make docs-check`` points it at the ``site/`` that ``make docs`` just
built), served by ``http.server`` on a free 127.0.0.1 port, then rendered twice: once to
dump the DOM after scripts ran (title and navigation present), once to a screenshot (not
blank: a coloured header, text on the page). ``DOCS_SCREENSHOT`` keeps the screenshot at
that path for a look. Skipped only when no chromium is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE_TITLE = "phospho-embed"
#: Entries of the navigation the home page must show (tabs and the sidebar).
NAV_ENTRIES = (
    "Home",
    "Guide",
    "API reference",
    "Installation and configuration",
    "LangChain",
    "LlamaIndex",
    "Intent toolkit",
    "Intent discovery",
    "Testing your app offline",
    "Command line",
    "Reliability",
    "Performance",
    "Migrating from OpenAI integrations",
)
WINDOW = (1280, 900)


def find_chromium() -> str | None:
    """``$CHROMIUM``, else Debian's ``/usr/bin/chromium``, else one on ``PATH``."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: ``DOCS_SITE_DIR`` when set, else a fresh strict build."""
    given = os.environ.get("DOCS_SITE_DIR")
    if given:
        site = Path(given).resolve()
        assert (site / "index.html").is_file(), f"{site} holds no built site: run make docs"
        return site
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return site


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site_url(site_dir: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="docs-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def run_chromium(chromium: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


class _PageOutline(HTMLParser):
    """The page's ``<title>`` and the text of its ``<nav>`` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.nav_text: list[str] = []
        self._in_title = False
        self._nav_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "nav":
            self._nav_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "nav" and self._nav_depth:
            self._nav_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._nav_depth and data.strip():
            self.nav_text.append(" ".join(data.split()))


def test_home_page_dom_has_title_and_navigation(
    chromium: str, site_url: str, tmp_path: Path
) -> None:
    result = run_chromium(chromium, tmp_path / "profile", "--dump-dom", site_url)
    assert result.returncode == 0, result.stderr
    outline = _PageOutline()
    outline.feed(result.stdout)
    assert SITE_TITLE in outline.title, f"title is {outline.title!r}"
    missing = [entry for entry in NAV_ENTRIES if entry not in outline.nav_text]
    assert not missing, f"navigation lacks {missing}; it shows {outline.nav_text}"
    assert 'class="md-header' in result.stdout  # the Material theme, not a bare page


def test_home_page_screenshot_is_not_blank(chromium: str, site_url: str, tmp_path: Path) -> None:
    import numpy as np
    from matplotlib import image

    keep = os.environ.get("DOCS_SCREENSHOT")
    png = Path(keep).resolve() if keep else tmp_path / "home.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    result = run_chromium(chromium, tmp_path / "profile", f"--screenshot={png}", site_url)
    assert result.returncode == 0, result.stderr
    assert png.is_file(), result.stderr

    pixels = (image.imread(png)[:, :, :3] * 255).round().astype(np.uint8)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    assert len(colours) >= 16, f"only {len(colours)} colours: a blank page?"
    background = colours[counts.argmax()]
    assert counts.max() < 0.97 * counts.sum(), "one colour covers the page"

    # The header bar (Material's primary colour) across the top, not the page background.
    header = pixels[8:40, :, :].reshape(-1, 3)
    header_colour, header_count = np.unique(header, axis=0, return_counts=True)
    top = header_colour[header_count.argmax()]
    assert not np.array_equal(top, background), "no header bar above the page"
    # Text: pixels below the header that differ clearly from the background.
    body = pixels[150:, :, :].astype(int)
    inked = (np.abs(body - background.astype(int)).sum(axis=2) > 120).mean()
    assert inked > 0.005, f"the page body looks empty ({inked:.2%} of pixels inked)"
