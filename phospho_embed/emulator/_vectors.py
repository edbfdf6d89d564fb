"""The emulator's vectors: which kind, and the exact vector the server sends for a text.

Two kinds, both deterministic (the same text gives the same vector in every process):

- ``"semantic"``: a small static embedding model read offline from the ``wordllama`` wheel
  (see ``_semantic``): paraphrases score high even without a shared word;
- ``"lexical"``: hashed words and character n-grams (see ``_lexical``): only shared wording
  scores high; any size, no dependency.

``"auto"`` (the default, or ``$PHOSPHO_EMULATOR_VECTORS``) is semantic when the model is
installed and serves the size asked for (64, 128, 256 or more than 256), lexical otherwise:
the same settings work on every machine, and only an explicit ``"semantic"`` refuses.
"""

from __future__ import annotations

import os
import re
from typing import Literal, cast

from ._lexical import lexical_vector
from ._semantic import (
    INSTALL_HINT,
    MODEL_DIMENSIONS,
    MODEL_NAME,
    SemanticModelUnavailableError,
    check_dimensions,
    semantic_available,
    semantic_size,
    semantic_vector,
)

TOKEN_LIMIT = 15_000
"""The service's limit on input tokens per request (longer input gets 400)."""

VectorsSetting = Literal["auto", "semantic", "lexical"]
"""What ``vectors=`` accepts."""

VectorKind = Literal["semantic", "lexical"]
"""What ``"auto"`` resolves to."""

VECTORS: tuple[str, ...] = ("auto", "semantic", "lexical")
"""The values of ``vectors=`` (``--vectors``, ``$PHOSPHO_EMULATOR_VECTORS``)."""

VECTORS_ENV = "PHOSPHO_EMULATOR_VECTORS"
"""Environment variable giving the default of ``vectors`` (else ``"auto"``)."""

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Approximate the service's token count: words and punctuation marks, at least 1."""
    return max(1, len(_TOKEN_RE.findall(text)))


def default_vectors() -> VectorsSetting:
    """``$PHOSPHO_EMULATOR_VECTORS`` when set (checked), else ``"auto"``.

    Raises:
        ValueError: the variable holds something else than ``auto``, ``semantic`` or
            ``lexical``.
    """
    value = os.environ.get(VECTORS_ENV, "").strip().lower() or "auto"
    if value not in VECTORS:
        raise ValueError(f"${VECTORS_ENV} must be one of {', '.join(VECTORS)}, got {value!r}")
    return cast(VectorsSetting, value)


def resolve_vectors(vectors: str | None = None, dimensions: int | None = None) -> VectorKind:
    """The kind ``vectors`` stands for here (``None``: ``default_vectors()``).

    ``"auto"`` is semantic when the model is installed and, with ``dimensions``, serves that
    size; else lexical. With ``dimensions``, an explicit ``"semantic"`` checks the size.

    Raises:
        ValueError: an unknown ``vectors``, or a size semantic vectors cannot have.
        SemanticModelUnavailableError: ``"semantic"`` without the model installed.
    """
    chosen = default_vectors() if vectors is None else vectors
    if chosen not in VECTORS:
        allowed = ", ".join(repr(kind) for kind in VECTORS)
        raise ValueError(f"vectors must be one of {allowed}, got {chosen!r}")
    if chosen == "auto":
        served = dimensions is None or semantic_size(dimensions)
        chosen = "semantic" if served and semantic_available() else "lexical"
    if chosen == "semantic":
        if not semantic_available():
            raise SemanticModelUnavailableError(
                f"vectors='semantic' needs the {MODEL_NAME} model: {INSTALL_HINT}"
            )
        if dimensions is not None:
            check_dimensions(dimensions)
    return cast(VectorKind, chosen)


def describe_vectors(kind: VectorKind, dimensions: int, *, asked: str = "auto") -> str:
    """One line saying where the vectors come from (what the server logs at start)."""
    if kind == "semantic":
        size = (
            f"{dimensions} of its own dimensions"
            if dimensions <= MODEL_DIMENSIONS
            else f"{MODEL_DIMENSIONS} dimensions lifted exactly to {dimensions}"
        )
        return f"semantic vectors from {MODEL_NAME} (offline, {size})"
    line = f"lexical vectors (hashed words and character n-grams, {dimensions} dimensions)"
    if asked == "auto" and not semantic_size(dimensions):
        line += "; semantic vectors have 64, 128, 256 or more than 256 dimensions"
    elif asked == "auto":
        line += f"; for semantic vectors: {INSTALL_HINT}"
    return line


def emulator_vector(text: str, dimensions: int = 1536, vectors: str | None = None) -> list[float]:
    """The unit vector the emulator sends for ``text`` (a fresh list, safe to modify).

    ``vectors`` is ``"semantic"``, ``"lexical"`` or ``"auto"``; ``None`` means the
    emulator's default (``$PHOSPHO_EMULATOR_VECTORS``, else ``"auto"``), so
    ``emulator_vector(text)`` equals what an emulator started with default settings sends.
    Tests use it to check that what a client returned is what the server sent for that text.

    Raises:
        TypeError: ``text`` is not a str.
        ValueError: ``dimensions`` is not an int >= 1, or not a size of ``vectors`` (semantic
            vectors: 64, 128, 256, or more than 256), or ``vectors`` is unknown.
        SemanticModelUnavailableError: semantic vectors without the model installed.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
        raise ValueError(f"dimensions must be an int >= 1, got {dimensions!r}")
    return vector_values(text, dimensions, resolve_vectors(vectors, dimensions))


def vector_values(text: str, dimensions: int, kind: VectorKind) -> list[float]:
    """The vector's values as a fresh list, for settings already checked (the server's path)."""
    if kind == "semantic":
        values: list[float] = semantic_vector(text, dimensions).tolist()
        return values
    return lexical_vector(text, dimensions).tolist()
