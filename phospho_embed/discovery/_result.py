"""`DiscoveryResult`: the intents found, and everything that can be done with them."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, fields
from os import PathLike
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from phospho_embed._async_client import AsyncPhosphoClient
from phospho_embed._client import PhosphoClient
from phospho_embed.discovery import _plot, _report, _trend
from phospho_embed.discovery._cluster import Selection, assign, to_geometry
from phospho_embed.discovery._metrics import ClusterQuality, Evaluation, evaluate
from phospho_embed.discovery._trend import DriftRow, Groups, Records, TrendRow
from phospho_embed.encoders import Encoder, aencode, as_matrix, encode

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    from phospho_embed.intents import IntentClassifier

#: The name of messages in no intent in tables and charts.
NO_INTENT = "(no intent)"
#: Examples of messages in no intent shown by the report.
_REPORT_OUTLIERS = 10
#: Intents drawn in the trend chart (the largest ones).
_TREND_SERIES = 10
#: Messages classified at once with ``known=``.
_CLASSIFY_CHUNK = 2048


@dataclass(frozen=True)
class DiscoveredIntent:
    """One intent found in the messages.

    Attributes:
        id: its label in `DiscoveryResult.labels`; 0 is the largest intent.
        name: a short name: from the keywords, or from the namer when one was given and
            succeeded; unique within a result.
        size: its number of messages.
        share: ``size`` over all messages given to `discover_intents`.
        keywords: its most distinctive terms, best first (c-TF-IDF, see
            ``phospho_embed.discovery``).
        examples: its most representative messages: those closest to its centre (cosine),
            distinct, closest first.
        example_indices: the positions of ``examples`` in the input.
        cohesion: mean cosine similarity of its messages to its centre (in the clustering's
            centred geometry; higher is tighter).
        keyword_name: the name from the keywords (equal to ``name`` without a namer).
    """

    id: int
    name: str
    size: int
    share: float
    keywords: list[str]
    examples: list[str]
    example_indices: list[int]
    cohesion: float
    keyword_name: str


@dataclass(frozen=True)
class MessageRecord:
    """One message and where it landed (`DiscoveryResult.to_records`).

    Attributes:
        index: its position in the input.
        text: the message.
        intent_id: its intent's id, or -1.
        intent: its intent's name, or ``None``.
        similarity: cosine similarity to the nearest intent's centre.
        known_intent: with gap analysis, the known intent that covered it, else ``None``.
        timestamp: its timestamp (ISO 8601, UTC) when timestamps were given, else ``None``.
    """

    index: int
    text: str
    intent_id: int
    intent: str | None
    similarity: float
    known_intent: str | None
    timestamp: str | None


@dataclass(frozen=True)
class _Model:
    """What `assign` needs: the geometry and the rule of the clustering."""

    mean: NDArray[np.float32]
    centres: NDArray[np.float32]
    cutoffs: NDArray[np.float32]

    def labels(self, vectors: NDArray[np.float32]) -> tuple[NDArray[np.int64], Any]:
        return assign(to_geometry(vectors, self.mean), self.centres, self.cutoffs)


class DiscoveryResult:
    """The intents `discover_intents` found in a set of messages.

    Attributes:
        texts: the messages, in input order.
        labels: shape (n_texts,), int64: each message's intent id, or -1 when it is in no
            discovered intent (an outlier, or covered by a known intent with ``known=``).
        intents: the intents, largest first (``intents[i].id == i``).
        quality: silhouette, Calinski-Harabasz and Davies-Bouldin of the intents.
        selection: how their number was chosen (method, candidate scores).
        similarity: shape (n_texts,): each message's cosine similarity to the nearest
            intent's centre.
        known_labels: with ``known=``: the known intent of each message, ``None`` where the
            classifier rejected it; else ``None``.
        timestamps: shape (n_texts,), ``datetime64[s]`` (UTC), when given; else ``None``.
        naming_errors: intent id -> why the namer failed for it (those keep their keyword
            names).
        encoder: the encoder given, used by `assign` for texts.
        known: the classifier given as ``known=``, if any.
    """

    def __init__(
        self,
        *,
        texts: list[str],
        vectors: NDArray[np.float32],
        unit: NDArray[np.float32],
        labels: NDArray[np.int64],
        similarity: NDArray[np.float32],
        intents: list[DiscoveredIntent],
        quality: ClusterQuality,
        selection: Selection,
        model: _Model,
        known: IntentClassifier | None,
        known_labels: list[str | None] | None,
        timestamps: NDArray[np.datetime64] | None,
        naming_errors: dict[int, str],
        encoder: Encoder | None,
        random_state: int,
        sample_size: int,
    ) -> None:
        self.texts = texts
        self.labels = labels
        self.similarity = similarity
        self.intents = intents
        self.quality = quality
        self.selection = selection
        self.known = known
        self.known_labels = known_labels
        self.timestamps = timestamps
        self.naming_errors = naming_errors
        self.encoder = encoder
        self._vectors = vectors
        self._unit = unit
        self._model = model
        self._random_state = random_state
        self._sample_size = sample_size

    # -- summary ------------------------------------------------------------------------------

    @property
    def covered_by_known(self) -> int:
        """Messages a known intent covered (0 without ``known=``)."""
        if self.known_labels is None:
            return 0
        return sum(label is not None for label in self.known_labels)

    @property
    def outliers(self) -> NDArray[np.int64]:
        """Positions of the messages in no intent, discovered or known: shape (n_outliers,)."""
        outside = self.labels < 0
        if self.known_labels is not None:
            outside &= np.array([label is None for label in self.known_labels], dtype=bool)
        return np.flatnonzero(outside).astype(np.int64)

    @property
    def coverage(self) -> float:
        """Share of messages in an intent, discovered or known (``nan`` without messages)."""
        n = len(self.texts)
        return (n - len(self.outliers)) / n if n else math.nan

    def known_counts(self) -> dict[str, int]:
        """With ``known=``: messages per known intent, most first; else empty."""
        counts = Counter(label for label in self.known_labels or () if label is not None)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def summary(self) -> str:
        """A few lines: intents, coverage, how their number was chosen, naming failures."""
        n = len(self.texts)
        lines = [
            f"{len(self.intents)} intents in {n:,} messages; {len(self.outliers):,} "
            f"({_share(len(self.outliers), n)}) in no intent"
        ]
        if self.known_labels is not None:
            lines.append(
                f"{self.covered_by_known:,} ({_share(self.covered_by_known, n)}) covered by "
                f"{len(self.known_counts())} known intents; the new intents hold "
                f"{int((self.labels >= 0).sum()):,}"
            )
        lines.append(_selection_text(self.selection))
        if self.naming_errors:
            lines.append(f"{len(self.naming_errors)} intents kept their keyword names")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"DiscoveryResult({len(self.intents)} intents, {len(self.texts)} messages, "
            f"coverage={self.coverage:.3f})"
        )

    # -- evaluation and new messages ----------------------------------------------------------

    def evaluate(self, gold_labels: Sequence[Hashable]) -> Evaluation:
        """Compare the intents with known labels (NMI, ARI, Hungarian accuracy, coverage).

        With ``known=``, messages covered by a known intent count as that intent, so the
        whole partition (known and new intents) is evaluated.

        Args:
            gold_labels: one hashable label per message (``None`` is a label like any).

        Raises:
            ValueError: not one label per message.
        """
        combined = self.labels.copy()
        if self.known_labels is not None:
            offsets = {name: len(self.intents) + i for i, name in enumerate(self.known_counts())}
            for i, label in enumerate(self.known_labels):
                if label is not None:
                    combined[i] = offsets[label]
        return evaluate(combined, list(gold_labels))

    def assign(self, items: Sequence[str] | Any, *, encoder: Encoder | None = None) -> Any:
        """The intent of new messages: the nearest intent's id, or -1 when the message is
        not close enough to any (the same rule that left messages out during discovery; with
        ``known=``, also -1 when a known intent covers it).

        ``assign`` on the discovered messages' own vectors gives back `labels`.

        Args:
            items: texts (embedded with ``encoder``, else the encoder given to
                `discover_intents`), or vectors, shape (n, dim).
            encoder: an encoder for texts (see `phospho_embed.encoders`).

        Returns:
            An int64 array of shape (n,).

        Raises:
            TypeError: texts without any encoder.
            ValueError: vectors of another dimension than the discovered ones, or not a
                finite matrix.
        """
        texts = _texts_or_none(items)
        if texts is not None:
            return self._assign_vectors(encode(self._encoder_for(encoder), texts))
        return self._assign_vectors(as_matrix(items))

    async def aassign(self, items: Sequence[str] | Any, *, encoder: Encoder | None = None) -> Any:
        """Async `assign`: texts are embedded with the encoder's async methods."""
        texts = _texts_or_none(items)
        if texts is not None:
            return self._assign_vectors(await aencode(self._encoder_for(encoder), texts))
        return self._assign_vectors(as_matrix(items))

    def _encoder_for(self, encoder: Encoder | None) -> Encoder:
        chosen = encoder if encoder is not None else self.encoder
        if chosen is None:
            raise TypeError(
                "assigning texts needs an encoder: pass encoder=..., or vectors instead"
            )
        return chosen

    def _assign_vectors(self, vectors: NDArray[np.float32]) -> NDArray[np.int64]:
        if vectors.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        dimension = self._vectors.shape[1]
        if vectors.shape[1] != dimension:
            raise ValueError(
                f"the vectors have {vectors.shape[1]} dimensions, but the intents were "
                f"discovered in {dimension} (another model?)"
            )
        labels, _ = self._model.labels(vectors)
        if self.known is not None:
            covered = [label is not None for label in known_intents(self.known, vectors)]
            labels[np.asarray(covered, dtype=bool)] = -1
        result: NDArray[np.int64] = labels
        return result

    def to_classifier(
        self,
        *,
        client: PhosphoClient | AsyncPhosphoClient | None = None,
        examples_per_intent: int = 20,
        **options: Any,
    ) -> IntentClassifier:
        """An `IntentClassifier` whose intents are the discovered ones (by name), each with
        its ``examples_per_intent`` most representative messages' vectors as examples.

        The classifier has no rejection threshold: fit one on labelled messages
        (``IntentClassifier.fit``), or set ``threshold=`` through ``options``. With
        ``known=``, only the new intents are in it.

        Args:
            client: the client the classifier embeds texts with; default: the encoder
                given to `discover_intents` when it is a core client.
            examples_per_intent: examples per intent (at most its size).
            options: other keyword arguments of `IntentClassifier`.

        Raises:
            ValueError: no intent was found.
        """
        from phospho_embed.intents import IntentClassifier

        if not self.intents:
            raise ValueError("no intent was found: there is nothing to classify into")
        if examples_per_intent < 1:
            raise ValueError(f"examples_per_intent must be >= 1, got {examples_per_intent}")
        if client is None and isinstance(self.encoder, (PhosphoClient, AsyncPhosphoClient)):
            client = self.encoder
        examples = {
            intent.name: self._vectors[self._representatives(intent.id, examples_per_intent)]
            for intent in self.intents
        }
        # IntentClassifier reads its vectors with np.asarray: arrays serve as sequences.
        return IntentClassifier(cast(Any, examples), client=client, **options)

    def _representatives(self, intent: int, count: int) -> NDArray[np.int64]:
        members = np.flatnonzero(self.labels == intent)
        order = np.argsort(-self.similarity[members], kind="stable")
        chosen: NDArray[np.int64] = members[order[:count]]
        return chosen

    # -- over time ------------------------------------------------------------------------------

    def trend(self, timestamps: Sequence[Any] | None = None, freq: str = "D") -> Records[TrendRow]:
        """Messages per intent per period, with shares and the change from the period before.

        Every period from the first to the last is listed (empty ones too), and every
        intent in each, plus ``"(no intent)"`` (id -1) and, with ``known=``, each known
        intent (id ``None``).

        Args:
            timestamps: one per message (see ``phospho_embed.discovery._trend`` for the
                accepted types); default: those given to `discover_intents`.
            freq: the period: ``"H"``, ``"D"``, ``"W"`` (weeks from Monday), ``"M"``,
                ``"Q"`` or ``"Y"``.

        Returns:
            `TrendRow` records, period after period (``.to_pandas()`` for a DataFrame).

        Raises:
            ValueError: no timestamps, not one per message, an unknown ``freq``, or more
                than 10,000 periods.
        """
        return _trend.trend_rows(self._groups(), self._times(timestamps), freq)

    def drift(
        self,
        timestamps: Sequence[Any] | None = None,
        *,
        freq: str = "W",
        before: Any = None,
        after: Any = None,
        z: float = _trend.DEFAULT_Z,
    ) -> Records[DriftRow]:
        """Which intents grew, shrank, appeared or vanished between two periods.

        A change counts when a two-proportion z-test (pooled) on the intent's share of the
        two periods' messages gives ``|z| >= z`` (1.96: 95%, two-sided); smaller changes
        are ``"steady"``.

        Args:
            timestamps: as for `trend`.
            freq: the period length, as for `trend`.
            before: the earlier period, by label (as `trend` writes them) or by any
                timestamp inside; default: the last but one period that has messages.
            after: the later period, the same way; default: the last one with messages.
            z: the z statistic a change needs.

        Returns:
            `DriftRow` records, largest share change first.

        Raises:
            ValueError: as for `trend`, or fewer than two periods with messages.
        """
        return _trend.drift_rows(self._groups(), self._times(timestamps), freq, before, after, z)

    def _times(self, timestamps: Sequence[Any] | None) -> NDArray[np.datetime64]:
        if timestamps is None:
            if self.timestamps is None:
                raise ValueError(
                    "no timestamps: pass them here, or to discover_intents(timestamps=...)"
                )
            return self.timestamps
        parsed = _trend.parse_timestamps(timestamps)
        if len(parsed) != len(self.texts):
            raise ValueError(f"got {len(parsed)} timestamps for {len(self.texts)} messages")
        return parsed

    def _groups(self) -> Groups:
        ids: list[int | None] = [intent.id for intent in self.intents]
        names = [intent.name for intent in self.intents]
        codes = self.labels.copy()
        known = self.known_counts()
        if self.known_labels is not None:
            position = {name: len(ids) + i for i, name in enumerate(known)}
            for i, label in enumerate(self.known_labels):
                if label is not None:
                    codes[i] = position[label]
            ids += [None] * len(known)
            names += list(known)
        codes[codes < 0] = len(ids)
        return Groups(codes=codes, ids=[*ids, -1], names=[*names, NO_INTENT])

    # -- export -----------------------------------------------------------------------------

    def to_records(self) -> Records[MessageRecord]:
        """One `MessageRecord` per message, in input order (``.to_pandas()`` available)."""
        names = [intent.name for intent in self.intents]
        times = None if self.timestamps is None else self.timestamps.astype(str)
        records: Records[MessageRecord] = Records()
        for i, text in enumerate(self.texts):
            label = int(self.labels[i])
            records.append(
                MessageRecord(
                    index=i,
                    text=text,
                    intent_id=label,
                    intent=names[label] if label >= 0 else None,
                    similarity=round(float(self.similarity[i]), 6),
                    known_intent=None if self.known_labels is None else self.known_labels[i],
                    timestamp=None if times is None else str(times[i]),
                )
            )
        return records

    def to_csv(self, path: str | PathLike[str]) -> None:
        """Write `to_records` as CSV (UTF-8, a header row); the ``known_intent`` and
        ``timestamp`` columns only when they apply."""
        columns = self._columns()
        with open(path, "w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(columns)
            for record in self.to_records():
                writer.writerow(["" if (v := getattr(record, c)) is None else v for c in columns])

    def to_jsonl(self, path: str | PathLike[str]) -> None:
        """Write `to_records` as JSON lines (UTF-8), with the columns of `to_csv`."""
        columns = self._columns()
        with open(path, "w", encoding="utf-8") as file:
            for record in self.to_records():
                line = {column: getattr(record, column) for column in columns}
                file.write(json.dumps(line, ensure_ascii=False) + "\n")

    def _columns(self) -> list[str]:
        skip = set()
        if self.known_labels is None:
            skip.add("known_intent")
        if self.timestamps is None:
            skip.add("timestamp")
        return [field.name for field in fields(MessageRecord) if field.name not in skip]

    # -- pictures -------------------------------------------------------------------------------

    def plot(
        self,
        path: str | PathLike[str] | None = None,
        *,
        max_points: int = 20_000,
        named: int = 20,
        title: str | None = None,
    ) -> Figure:
        """Draw the map: messages on the first two principal components of their vectors
        (scikit-learn's PCA, deterministic), coloured by intent, the ``named`` largest
        intents named; grey: in no intent; pale blue: covered by a known intent.

        Args:
            path: where to write it as PNG (nothing is written without it).
            max_points: messages drawn at most (a fixed random sample beyond).
            named: how many intents are named on the map.
            title: the title (default: the number of intents and messages).

        Returns:
            The ``matplotlib.figure.Figure`` (shown inline by notebooks); no window opens.

        Raises:
            ImportError: matplotlib or scikit-learn is not installed (the ``analytics``
                extra).
        """
        figure = self._map(max_points=max_points, named=named, title=title)
        if path is not None:
            figure.savefig(path, format="png")
        return figure

    def _map(self, *, max_points: int, named: int, title: str | None) -> Figure:
        n = len(self.texts)
        rng = np.random.default_rng(self._random_state)
        shown = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
        fit = shown[: self._sample_size] if len(shown) > self._sample_size else shown
        points = _plot.project_2d(self._unit[shown], np.searchsorted(shown, fit), 0)
        labels = self.labels[shown].copy()
        if self.known_labels is not None:
            for position, i in enumerate(shown):
                if self.known_labels[i] is not None:
                    labels[position] = -2
        return _plot.map_figure(
            points,
            labels,
            [intent.name for intent in self.intents],
            title=title or f"{len(self.intents)} intents in {n:,} messages",
            named=named,
        )

    def report(
        self,
        path: str | PathLike[str],
        *,
        title: str = "Intent discovery",
        freq: str | None = None,
    ) -> None:
        """Write one self-contained HTML page: summary figures, the map, the trend chart
        (when timestamps were given), the table of intents (name, size, share, keywords,
        examples), known intents (with ``known=``), examples of messages in no intent, and
        the quality figures.

        The page loads nothing from anywhere (pictures are inline PNG, there is no script)
        and every message, name and keyword is HTML-escaped.

        Args:
            path: the ``.html`` file to write.
            title: the page's title.
            freq: the trend chart's period (see `trend`); default: from the time span
                (hours up to 3 days, days up to 90, weeks up to two years, else months).

        Raises:
            ImportError: matplotlib or scikit-learn is not installed.
        """
        n = len(self.texts)
        figure = self._map(max_points=20_000, named=20, title=None)
        trend_png, caption = self._trend_chart(freq)
        content = _report.ReportContent(
            title=title,
            summary=self.summary().replace("\n", ". "),
            figures=[
                ("messages", f"{n:,}"),
                ("intents found", f"{len(self.intents):,}"),
                ("coverage", f"{self.coverage:.1%}" if n else "n/a"),
                ("in no intent", f"{len(self.outliers):,}"),
                ("silhouette", _figure(self.quality.silhouette)),
            ],
            quality=self.quality,
            intents=[
                _report.IntentLine(
                    str(intent.id),
                    intent.name,
                    intent.size,
                    intent.share,
                    intent.keywords,
                    intent.examples,
                )
                for intent in self.intents
            ],
            known=[(name, size, size / n) for name, size in self.known_counts().items()],
            outliers=[self.texts[i] for i in self.outliers[:_REPORT_OUTLIERS]],
            map_png=_plot.png_bytes(figure),
            trend_png=trend_png,
            trend_caption=caption,
        )
        with open(path, "w", encoding="utf-8") as file:
            file.write(_report.render(content))

    def _trend_chart(self, freq: str | None) -> tuple[bytes | None, str]:
        if self.timestamps is None or not len(self.timestamps):
            return None, ""
        chosen = freq or _trend.auto_freq(self.timestamps)
        rows = self.trend(freq=chosen)
        periods = list(dict.fromkeys(row.period for row in rows))
        period_index = {period: p for p, period in enumerate(periods)}
        series = self.intents[:_TREND_SERIES]
        # Periods without messages stay NaN: gaps in the lines, not false zeros.
        shares = np.full((len(periods), len(series)), np.nan)
        for row in rows:
            if row.intent_id is not None and 0 <= row.intent_id < len(series):
                shares[period_index[row.period], row.intent_id] = row.share
        figure = _plot.trend_figure(
            periods,
            shares,
            [intent.name for intent in series],
            title=f"Share of messages per period (freq={chosen})",
        )
        caption = (
            f"The {len(series)} largest intents' share of each period's messages "
            f"(freq={chosen}); found.trend(freq={chosen!r}) gives every intent."
        )
        return _plot.png_bytes(figure), caption


def known_intents(known: IntentClassifier, vectors: NDArray[np.float32]) -> list[str | None]:
    """The known intent of each row of ``vectors`` (``None``: rejected), classified in
    chunks so the (rows, examples) score matrix stays small."""
    labels: list[str | None] = []
    for start in range(0, vectors.shape[0], _CLASSIFY_CHUNK):
        # classify_vectors reads its input with np.asarray: an array serves as a sequence.
        chunk = cast(Any, vectors[start : start + _CLASSIFY_CHUNK])
        labels.extend(match.intent for match in known.classify_vectors(chunk))
    return labels


def _texts_or_none(items: Any) -> list[str] | None:
    """``items`` as a list of texts if it is one (first item a string), else ``None``."""
    if isinstance(items, str):
        raise TypeError("assign takes a list of texts or of vectors, not one string")
    if isinstance(items, np.ndarray):
        return None
    values = list(items)
    if values and isinstance(values[0], str):
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise TypeError(f"items[{i}] is a {type(value).__name__}, not a string")
        return values
    return None


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def _figure(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _selection_text(selection: Selection) -> str:
    if selection.method == "given":
        return f"Number of intents given: {selection.k}"
    if selection.method == "silhouette":
        return (
            f"Number of intents chosen by cosine silhouette on {selection.sample_size:,} "
            f"messages: {selection.k} (best of {len(selection.scores)} candidates)"
        )
    if selection.method == "single":
        return "Every message has the same vector: one intent"
    return "Too few messages for an intent of the minimum size"
