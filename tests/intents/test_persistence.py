"""`save` and `load`: no re-embedding, the model and dimension checked, an atomic write, and
a damaged or crafted file refused with a clear ``ValueError`` (issue 15, item 17)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from langchain_phospho import PhosphoEmbeddings
from phospho_embed import PhosphoClient
from phospho_embed.demo_data import LABELLED, MESSAGES
from phospho_embed.emulator import Emulator
from phospho_embed.intents import IntentClassifier
from tests.intents.toy import AXES, unit

INVALID = "is not a valid saved IntentClassifier"


def test_save_and_load_without_re_embedding(
    classifier: IntentClassifier, client: PhosphoClient, emulator: Emulator, tmp_path: Path
) -> None:
    classifier.fit([t for t, _ in LABELLED], [i for _, i in LABELLED])
    path = tmp_path / "support-intents.npz"
    classifier.save(path)
    emulator.reset_stats()
    loaded = IntentClassifier.load(path, client)
    assert emulator.stats.requests == 0  # the examples were not embedded again
    assert (loaded.threshold_, loaded.thresholds_, loaded.margin_) == (
        classifier.threshold_,
        classifier.thresholds_,
        classifier.margin_,
    )
    assert loaded.intents_ == classifier.intents_
    assert loaded.classify_many(MESSAGES) == classifier.classify_many(MESSAGES)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_load_refuses_another_model_or_dimension(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "intents.npz"
    IntentClassifier(AXES, model="intent-embed").save(path)
    with pytest.raises(ValueError, match="built with model 'intent-embed', not 'other-embed'"):
        IntentClassifier.load(path, model="other-embed")
    emulator.configure(dimensions=64)
    with PhosphoClient(api_key="k", base_url=emulator.base_url) as small:
        small.embed("learn the dimension")
        with pytest.raises(ValueError, match=r"3-dimensional vectors, but .* 64-dimensional"):
            IntentClassifier.load(path, small)
    loaded = IntentClassifier.load(path, model="intent-embed")
    with pytest.raises(ValueError, match="64 dimensions, but this classifier was built from 3"):
        loaded.classify_vectors([[1.0] * 64])


def test_the_encoders_model_is_recorded(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "intents.npz"
    examples = {"refund": ["I want a refund"], "track_parcel": ["where is my parcel"]}
    embeddings = PhosphoEmbeddings(
        api_key=SecretStr("k"), base_url=emulator.base_url, model="intent-embed"
    )
    IntentClassifier.from_examples(examples, encoder=embeddings).save(path)
    other = PhosphoEmbeddings(
        api_key=SecretStr("k"), base_url=emulator.base_url, model="other-embed"
    )
    with pytest.raises(ValueError, match="built with model 'intent-embed', not 'other-embed'"):
        IntentClassifier.load(path, other)
    assert IntentClassifier.load(path, embeddings).model == "intent-embed"
    embeddings.close()
    other.close()


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "intents.npz"
    IntentClassifier(AXES, threshold=0.5).save(path)
    before = path.read_bytes()

    def interrupted(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PK\x03\x04 half a classifier")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(OSError, match="No space left"):
        IntentClassifier(AXES, threshold=0.9).save(path)
    assert path.read_bytes() == before  # the previous classifier is intact
    assert IntentClassifier.load(path).threshold_ == 0.5
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# -- damaged and crafted files ---------------------------------------------------------------


def _saved_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "toy.npz"
    IntentClassifier(AXES, threshold=0.5, thresholds={"a": 0.6}, margin=0.1).save(path)
    return path.read_bytes()


def _meta(**changes: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "format": "phospho-embed-intents/1",
        "model": None,
        "dimension": 3,
        "intents": ["a", "b", "c"],
        "counts": [1, 1, 1],
        "aggregation": "top_k_mean",
        "top_k": 5,
        "center": True,
        "threshold": None,
        "thresholds": {},
        "margin": None,
    }
    return {**meta, **changes}


def _npz(vectors: Any = None, meta: Any = None, raw: dict[str, bytes] | None = None) -> bytes:
    """An archive shaped like a saved classifier, with the ``vectors`` array, the ``meta``
    (a dict, dumped as JSON, or a str), or the ``raw`` bytes of a member replaced."""
    arrays = {
        "vectors": np.eye(3, dtype=np.float32) if vectors is None else vectors,
        "meta": json.dumps(_meta() if meta is None else meta)
        if not isinstance(meta, str)
        else meta,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asarray(array), allow_pickle=False)
            archive.writestr(f"{name}.npy", (raw or {}).get(name, npy.getvalue()))
    return buffer.getvalue()


def _npy_claiming(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """An .npy member whose header announces ``shape``, followed by 12 bytes of data."""
    npy = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(npy, header)
    return npy.getvalue() + bytes(12)


# How a file is damaged -> what the error says about it.
DAMAGED: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty": (lambda good: b"", "not an .npz archive"),
    "not a zip": (lambda good: b"not a classifier at all", "not an .npz archive"),
    "truncated": (lambda good: good[: len(good) // 2], "BadZipFile"),
    "a plain .npy of 4 TB": (lambda good: _npy_claiming((2**40,)), "not an .npz archive"),
    "vectors claiming 4 TB": (
        lambda good: _npz(raw={"vectors": _npy_claiming((2**30, 1024))}),
        r"'vectors' announces shape \(1073741824, 1024\) but holds 12 bytes",
    ),
    "object vectors": (
        lambda good: _npz(raw={"vectors": _npy_claiming((3, 3), descr="|O")}),
        "'vectors' has an unexpected type object",
    ),
    "vectors of text": (lambda good: _npz(vectors=np.array([["a"]])), "unexpected type <U1"),
    "no vectors": (lambda good: _zip_without(good, "vectors.npy"), "it has no 'vectors' array"),
    "counts short of the rows": (
        lambda good: _npz(meta=_meta(counts=[1, 1, 0])),
        "one number of examples",
    ),
    "counts beyond the rows": (
        lambda good: _npz(meta=_meta(counts=[1, 1, 2])),
        "its counts add up to 4 examples, but it holds 3 vectors",
    ),
    "counts of the wrong type": (lambda good: _npz(meta=_meta(counts="111")), "'counts'"),
    "one count too many": (lambda good: _npz(meta=_meta(counts=[1, 1, 1, 1])), "'counts'"),
    "another dimension": (lambda good: _npz(meta=_meta(dimension=4)), "'dimension' 4"),
    "intents not names": (lambda good: _npz(meta=_meta(intents=[1, 2, 3])), "'intents'"),
    "duplicate intents": (lambda good: _npz(meta=_meta(intents=["a", "a", "b"])), "distinct"),
    "unknown aggregation": (lambda good: _npz(meta=_meta(aggregation="sum")), "'aggregation'"),
    "top_k as text": (lambda good: _npz(meta=_meta(top_k="5")), "'top_k'"),
    "center as a number": (lambda good: _npz(meta=_meta(center=1)), "'center'"),
    "threshold as text": (lambda good: _npz(meta=_meta(threshold="0.5")), "'threshold'"),
    "margin infinite": (
        lambda good: _npz(meta=json.dumps(_meta()).replace('"margin": null', '"margin": Infinity')),
        "'margin'",
    ),
    "thresholds of unknown intents": (
        lambda good: _npz(meta=_meta(thresholds={"z": 0.5})),
        "'thresholds'",
    ),
    "another format": (lambda good: _npz(meta=_meta(format="something-else/2")), "format"),
    "meta not an object": (lambda good: _npz(meta="[1, 2, 3]"), "format"),
    "meta not JSON": (lambda good: _npz(meta="{not json"), "JSONDecodeError"),
    "meta nested very deep": (lambda good: _npz(meta="[" * 100_000 + "]" * 100_000), "Recursion"),
    "NaN vectors": (
        lambda good: _npz(vectors=np.full((3, 3), np.nan, dtype=np.float32)),
        "NaN or infinite",
    ),
}


def _zip_without(good: bytes, name: str) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(good)) as source,
        zipfile.ZipFile(buffer, "w") as target,
    ):
        for info in source.infolist():
            if info.filename != name:
                target.writestr(info, source.read(info))
    return buffer.getvalue()


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_a_damaged_file_is_a_clear_value_error(damage: str, tmp_path: Path) -> None:
    make, problem = DAMAGED[damage]
    path = tmp_path / "intents.npz"
    path.write_bytes(make(_saved_bytes(tmp_path)))
    with pytest.raises(ValueError, match=f"intents.npz {INVALID}: .*{problem}"):
        IntentClassifier.load(path)


def test_every_truncation_is_refused(tmp_path: Path) -> None:
    good = _saved_bytes(tmp_path)
    path = tmp_path / "intents.npz"
    for size in range(0, len(good), 3):
        path.write_bytes(good[:size])
        with pytest.raises(ValueError, match=INVALID):
            IntentClassifier.load(path)


def test_a_flipped_bit_anywhere_is_refused_or_harmless(tmp_path: Path) -> None:
    good = _saved_bytes(tmp_path)
    reference = IntentClassifier.load(tmp_path / "toy.npz")
    path = tmp_path / "intents.npz"
    refused = 0
    for position in range(len(good)):
        damaged = bytearray(good)
        damaged[position] ^= 1 << (position % 8)
        path.write_bytes(bytes(damaged))
        try:
            loaded = IntentClassifier.load(path)
        except ValueError as error:
            assert INVALID in str(error)
            refused += 1
        else:  # the flip hit bytes nothing reads (a timestamp, a spare field)
            assert loaded.intents_ == reference.intents_
            np.testing.assert_array_equal(loaded.example_vectors_, reference.example_vectors_)
            assert loaded.thresholds_ == reference.thresholds_
    assert refused > len(good) // 2


def test_a_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{INVALID}: FileNotFoundError"):
        IntentClassifier.load(tmp_path / "nowhere.npz")


def test_the_saved_vectors_and_settings_round_trip(tmp_path: Path) -> None:
    examples = {"x": [unit(1, 0), unit(0.6, 0.8)], "y": [unit(0, 1)]}
    original = IntentClassifier(
        examples, aggregation="max", top_k=2, center=False, threshold=0.2, margin=0.05
    )
    original.save(tmp_path / "c.npz")
    loaded = IntentClassifier.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(loaded.example_vectors_, original.example_vectors_)
    assert (loaded.aggregation, loaded.top_k, loaded.center) == ("max", 2, False)
    assert (loaded.threshold_, loaded.margin_, loaded.model) == (0.2, 0.05, None)
