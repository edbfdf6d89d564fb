"""Shared by the Dask tests: texts, and the vectors the emulator sends for them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from phospho_embed.emulator import emulator_vector

#: Short vectors keep partitions and parquet files small; lexical vectors need no model.
DIMENSIONS = 16


def expected(text: str) -> list[float]:
    """What the emulator (lexical, `DIMENSIONS`) sends for ``text``."""
    return emulator_vector(text, DIMENSIONS, vectors="lexical")


def assert_vectors(texts: Sequence[str], vectors: Sequence[object]) -> None:
    """Each vector is the emulator's for the text at the same position."""
    assert len(texts) == len(vectors)
    for text, vector in zip(texts, vectors, strict=True):
        assert vector is not None, text
        assert list(vector) == expected(text), text  # type: ignore[call-overload]


def assert_stored_vectors(texts: Sequence[str], vectors: Sequence[object]) -> None:
    """As `assert_vectors`, for vectors read back from parquet (stored as float32)."""
    assert len(texts) == len(vectors)
    for text, vector in zip(texts, vectors, strict=True):
        assert vector is not None, text
        stored = np.asarray(vector)
        assert stored.dtype == np.float32, text
        assert np.array_equal(stored, np.asarray(expected(text), dtype=np.float32)), text
