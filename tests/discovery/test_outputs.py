"""Exports (records, CSV, JSONL), the map (PNG, no window) and the HTML report (one
self-contained page, every user text escaped)."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from phospho_embed.discovery import DiscoveryResult, discover_intents
from phospho_embed.intents import IntentClassifier
from tests.discovery.conftest import sphere_clusters

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


@pytest.fixture(scope="module")
def found() -> DiscoveryResult:
    vectors, labels = sphere_clusters(3, 20, dim=16, noise=0.3, seed=31)
    topics = ["refund", "parcel", "password"]
    texts = [f"{topics[label]} issue number {i}" for i, label in enumerate(labels)]
    texts[0] = f"refund {HOSTILE}"
    days = [f"2024-05-{1 + i % 10:02d}T08:00:00Z" for i in range(len(texts))]
    return discover_intents(texts, vectors=vectors, timestamps=days, n_examples=20)


def test_records_follow_the_labels(found: DiscoveryResult) -> None:
    records = found.to_records()
    assert [record.index for record in records] == list(range(60))
    assert [record.intent_id for record in records] == found.labels.tolist()
    for record in records:
        if record.intent_id >= 0:
            assert record.intent == found.intents[record.intent_id].name
        else:
            assert record.intent is None
    assert records[0].timestamp == "2024-05-01T08:00:00"
    assert records[0].known_intent is None


def test_csv_and_jsonl_hold_one_row_per_message(found: DiscoveryResult, tmp_path: Path) -> None:
    found.to_csv(tmp_path / "out.csv")
    found.to_jsonl(tmp_path / "out.jsonl")
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    columns = ["index", "text", "intent_id", "intent", "similarity", "timestamp"]
    assert list(rows[0]) == columns  # no known_intent column without known=
    assert list(lines[0]) == columns
    assert len(rows) == len(lines) == 60
    assert rows[0]["text"] == lines[0]["text"] == found.texts[0]
    assert [int(row["intent_id"]) for row in rows] == found.labels.tolist()


def test_the_map_is_a_png_and_opens_no_window(
    found: DiscoveryResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyplot is the only way to a window: importing it now would fail the test.
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    figure = found.plot(tmp_path / "map.png", title="Support inbox")
    assert figure.axes[0].get_title() == "Support inbox"
    names = {text.get_text() for text in figure.axes[0].texts}
    assert names == {intent.name for intent in found.intents}
    from matplotlib import image

    pixels = image.imread(tmp_path / "map.png")
    assert pixels.shape[:2] == (750, 1000)
    rgb = (pixels[:, :, :3] * 255).round().astype(np.int32).reshape(-1, 3)
    assert len(np.unique(rgb @ np.array([65536, 256, 1]))) > 20  # dots in colours


def test_report_is_one_self_contained_escaped_page(found: DiscoveryResult, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    found.report(path, title="Support <inbox>")
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page  # the hostile message is text, not code
    assert html_escaped(HOSTILE) in page
    assert "<title>Support &lt;inbox&gt;</title>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing loaded
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 2  # map, trend
    assert page.count('<tr><td class="number">') >= len(found.intents)
    for intent in found.intents:
        assert html_escaped(intent.name) in page
    assert "Calinski-Harabasz" in page


def test_report_of_gap_analysis_lists_known_intents(tmp_path: Path) -> None:
    vectors, labels = sphere_clusters(3, 20, dim=16, noise=0.2, seed=32)
    known = IntentClassifier({"billing": vectors[labels == 0][:5]}, threshold=0.6, center=False)
    texts = [f"topic{label} message" for label in labels]
    found = discover_intents(texts, vectors=vectors, known=known)
    found.report(tmp_path / "gap.html")
    page = (tmp_path / "gap.html").read_text(encoding="utf-8")
    assert "Covered by known intents" in page
    assert "<td>billing</td>" in page
    assert "Intents over time" not in page  # no timestamps, no chart


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)
