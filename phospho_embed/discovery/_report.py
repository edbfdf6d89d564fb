"""The HTML report: one self-contained page (pictures inlined as base64 PNG, no script, no
request to any server), every piece of user text escaped."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from phospho_embed.discovery._metrics import ClusterQuality

_STYLE = """
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
.lede { color: #57606a; margin-top: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; padding: 0; list-style: none; }
.figures li { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
              padding: .6rem 1rem; min-width: 9rem; }
.figures b { display: block; font-size: 1.3rem; }
img { max-width: 100%; height: auto; border: 1px solid #d0d7de; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .35rem .5rem; vertical-align: top;
         text-align: left; overflow-wrap: anywhere; }
th { background: #f6f8fa; }
td.number { text-align: right; white-space: nowrap; }
ul.examples { margin: 0; padding-left: 1.1rem; }
.keywords { color: #57606a; }
"""


@dataclass(frozen=True)
class IntentLine:
    """What the report shows of one intent (or of one known intent)."""

    id: str
    name: str
    size: int
    share: float
    keywords: Sequence[str]
    examples: Sequence[str]


@dataclass(frozen=True)
class ReportContent:
    """Everything the page shows; the pictures are PNG bytes."""

    title: str
    summary: str
    figures: Sequence[tuple[str, str]]
    quality: ClusterQuality
    intents: Sequence[IntentLine]
    known: Sequence[tuple[str, int, float]]
    outliers: Sequence[str]
    map_png: bytes
    trend_png: bytes | None
    trend_caption: str


def render(content: ReportContent) -> str:
    """The page's HTML."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(content.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(content.title)}</h1>",
        f'<p class="lede">{e(content.summary)}</p>',
        '<ul class="figures">',
        *(f"<li>{e(label)}<b>{e(value)}</b></li>" for label, value in content.figures),
        "</ul>",
        "<h2>Map of the messages</h2>",
        _image(
            content.map_png, "Messages projected on two principal components, coloured by intent"
        ),
        "<p>Each dot is a message, coloured by its intent (grey: in no intent), placed by "
        "the first two principal components of its embedding; the largest intents are "
        "named where their messages lie.</p>",
    ]
    if content.trend_png is not None:
        parts += [
            "<h2>Intents over time</h2>",
            _image(content.trend_png, "Share of messages per intent over time"),
            f"<p>{e(content.trend_caption)}</p>",
        ]
    parts += [
        "<h2>Intents</h2>",
        '<table id="intents"><thead><tr><th>id</th><th>name</th><th>messages</th>'
        "<th>share</th><th>keywords</th><th>examples</th></tr></thead><tbody>",
        *(_intent_row(line) for line in content.intents),
        "</tbody></table>",
    ]
    if content.known:
        parts += [
            "<h2>Covered by known intents</h2>",
            '<table id="known"><thead><tr><th>known intent</th><th>messages</th>'
            "<th>share</th></tr></thead><tbody>",
            *(
                f'<tr><td>{e(name)}</td><td class="number">{size:,}</td>'
                f'<td class="number">{share:.1%}</td></tr>'
                for name, size, share in content.known
            ),
            "</tbody></table>",
        ]
    if content.outliers:
        parts += [
            "<h2>Messages in no intent (examples)</h2>",
            '<ul class="examples">',
            *(f"<li>{e(text)}</li>" for text in content.outliers),
            "</ul>",
        ]
    parts += ["<h2>Quality</h2>", _quality(content.quality), "</body></html>"]
    return "\n".join(parts)


def _intent_row(line: IntentLine) -> str:
    e = html.escape
    examples = "".join(f"<li>{e(text)}</li>" for text in line.examples)
    return (
        f'<tr><td class="number">{e(line.id)}</td><td>{e(line.name)}</td>'
        f'<td class="number">{line.size:,}</td><td class="number">{line.share:.1%}</td>'
        f'<td class="keywords">{e(", ".join(line.keywords))}</td>'
        f'<td><ul class="examples">{examples}</ul></td></tr>'
    )


def _quality(quality: ClusterQuality) -> str:
    def number(value: float) -> str:
        return "n/a (fewer than two intents)" if math.isnan(value) else f"{value:.3f}"

    return (
        '<table id="quality"><tbody>'
        f"<tr><th>silhouette (cosine; -1 to 1, higher is better)</th>"
        f'<td class="number">{number(quality.silhouette)}</td></tr>'
        f"<tr><th>Calinski-Harabasz (higher is better)</th>"
        f'<td class="number">{number(quality.calinski_harabasz)}</td></tr>'
        f"<tr><th>Davies-Bouldin (lower is better)</th>"
        f'<td class="number">{number(quality.davies_bouldin)}</td></tr>'
        f"<tr><th>messages scored (those in an intent)</th>"
        f'<td class="number">{quality.messages:,}</td></tr>'
        "</tbody></table>"
    )


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
