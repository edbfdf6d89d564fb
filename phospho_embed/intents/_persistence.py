"""Saving a classifier to a numpy ``.npz`` file, atomically, and reading one back without
trusting it: a truncated, corrupted or crafted file is a ``ValueError``, never a crash deep
inside numpy, zipfile or json, nor an allocation of whatever size a header claims."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import zipfile
import zlib
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import numpy as np

from phospho_embed.intents._scoring import AGGREGATIONS, Aggregation

if TYPE_CHECKING:
    from numpy.typing import NDArray

FORMAT = "phospho-embed-intents/1"

_ZIP_MAGIC = b"PK\x03\x04"

# Deflate cannot expand data more than about 1032 times: a member that claims more than
# this over its compressed size lies about its size, and would make numpy allocate it.
_MAX_EXPANSION = 1032
# What reading a damaged or foreign file can raise, inside numpy, zipfile, zlib and json.
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    zipfile.BadZipFile,
    zlib.error,
    RecursionError,
    UnicodeDecodeError,
)


@dataclass(frozen=True)
class Saved:
    """What a saved classifier holds: its examples' vectors and its settings.

    Attributes:
        vectors: the example vectors, intent after intent, shape ``(n_examples, dim)``.
        intents: the intents' names, in order.
        counts: each intent's number of examples (they add up to ``n_examples``).
        model: the model the vectors come from, ``None`` when unknown.
        aggregation, top_k, center: the scoring settings.
        threshold, thresholds, margin: the rejection settings.
    """

    vectors: NDArray[np.float32]
    intents: list[str]
    counts: list[int]
    model: str | None
    aggregation: Aggregation
    top_k: int
    center: bool
    threshold: float | None
    thresholds: dict[str, float]
    margin: float | None


def write(path: str | PathLike[str], saved: Saved) -> None:
    """Write ``saved`` to ``path`` atomically: into a new file of the same directory, then
    renamed over ``path``, so a crash or a full disk never leaves a half-written classifier
    (an existing file at ``path`` stays as it was).

    Raises:
        OSError: the file cannot be written.
    """
    meta = {
        "format": FORMAT,
        "model": saved.model,
        "dimension": int(saved.vectors.shape[1]),
        "intents": saved.intents,
        "counts": saved.counts,
        "aggregation": saved.aggregation,
        "top_k": saved.top_k,
        "center": saved.center,
        "threshold": saved.threshold,
        "thresholds": saved.thresholds,
        "margin": saved.margin,
    }
    target = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(target))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    # os.open with O_EXCL, not tempfile: the file gets the umask's permissions, as a plain
    # open() would give it, rather than tempfile's owner-only ones.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez_compressed(file, vectors=saved.vectors, meta=np.array(json.dumps(meta)))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):  # the write's own error is the one to report
            os.unlink(temporary)
        raise


def read(path: str | PathLike[str]) -> Saved:
    """Read and check a file written by `write`.

    Raises:
        ValueError: the file is missing, unreadable, not a saved classifier, damaged, or
            inconsistent (e.g. example counts that do not add up to its vectors); the
            message names the file and the problem.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(len(_ZIP_MAGIC))
        # np.load would also read a plain .npy, allocating whatever its header claims.
        if head != _ZIP_MAGIC:
            raise _Invalid("it is not an .npz archive")
        archive: np.lib.npyio.NpzFile = np.load(path, allow_pickle=False)
    except _Invalid as problem:
        raise _invalid(path, str(problem)) from None
    except _READ_ERRORS as error:
        raise _invalid(path, f"{type(error).__name__}: {error}") from None
    with archive:
        try:
            members = cast(zipfile.ZipFile, archive.zip)  # open until the with block ends
            _check_member(members, "meta", kind="U", ndim=0)
            _check_member(members, "vectors", kind="f", ndim=2)
            meta = json.loads(str(archive["meta"]))
            vectors = archive["vectors"]
        except _Invalid as problem:
            raise _invalid(path, str(problem)) from None
        except _READ_ERRORS as error:
            raise _invalid(path, f"{type(error).__name__}: {error}") from None
    try:
        return _saved(meta, vectors)
    except _Invalid as problem:
        raise _invalid(path, str(problem)) from None


class _Invalid(Exception):
    """A problem found in a file's contents (turned into the ValueError naming the file)."""


def _invalid(path: str | PathLike[str], problem: str) -> ValueError:
    return ValueError(f"{os.fspath(path)} is not a valid saved IntentClassifier: {problem}")


def _check_member(members: zipfile.ZipFile, name: str, *, kind: str, ndim: int) -> None:
    """Check a member's .npy header against its real size before numpy allocates the array
    the header announces."""
    try:
        info = members.getinfo(f"{name}.npy")
    except KeyError:
        raise _Invalid(f"it has no {name!r} array") from None
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # What np.savez writes; anything else is a damaged field or another tool's file.
        raise _Invalid(f"{name!r} uses an unexpected compression method {info.compress_type}")
    if info.file_size > _MAX_EXPANSION * info.compress_size + 1024:
        raise _Invalid(f"{name!r} claims {info.file_size} bytes from {info.compress_size}")
    with members.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise _Invalid(f"{name!r} has an unexpected .npy version {version}")
        data_size = info.file_size - member.tell()
    if dtype.kind != kind or dtype.hasobject or fortran_order or len(shape) != ndim:
        raise _Invalid(f"{name!r} has an unexpected type {dtype} or shape {shape}")
    if math.prod(shape) * dtype.itemsize != data_size:
        raise _Invalid(f"{name!r} announces shape {shape} but holds {data_size} bytes")


def _saved(meta: Any, vectors: NDArray[Any]) -> Saved:
    """The contents of a file, every field checked against the others."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Invalid(f"its metadata is not of the format {FORMAT}")
    rows, dimension = vectors.shape
    intents = meta.get("intents")
    if (
        not isinstance(intents, list)
        or not intents
        or not all(isinstance(name, str) and name for name in intents)
        or len(set(intents)) != len(intents)
    ):
        raise _Invalid("'intents' must be a list of distinct, non-empty names")
    counts = meta.get("counts")
    if (
        not isinstance(counts, list)
        or len(counts) != len(intents)
        or not all(_is_int(count) and count >= 1 for count in counts)
    ):
        raise _Invalid("'counts' must hold one number of examples (>= 1) per intent")
    if sum(counts) != rows:
        raise _Invalid(f"its counts add up to {sum(counts)} examples, but it holds {rows} vectors")
    if meta.get("dimension") != dimension or dimension < 1:
        raise _Invalid(f"'dimension' {meta.get('dimension')!r} is not its vectors' {dimension}")
    if not np.isfinite(vectors).all():
        raise _Invalid("its vectors hold NaN or infinite values")
    model = meta.get("model")
    aggregation = meta.get("aggregation")
    top_k = meta.get("top_k")
    center = meta.get("center")
    thresholds = meta.get("thresholds")
    if model is not None and not isinstance(model, str):
        raise _Invalid("'model' must be a string or null")
    if aggregation not in AGGREGATIONS:
        raise _Invalid(f"'aggregation' must be one of {', '.join(AGGREGATIONS)}")
    if not _is_int(top_k) or top_k < 1:
        raise _Invalid("'top_k' must be an integer >= 1")
    if not isinstance(center, bool):
        raise _Invalid("'center' must be true or false")
    if not isinstance(thresholds, dict) or not all(
        name in intents and _is_number(value) for name, value in thresholds.items()
    ):
        raise _Invalid("'thresholds' must map intents of the file to numbers")
    for setting in ("threshold", "margin"):
        if meta.get(setting) is not None and not _is_number(meta[setting]):
            raise _Invalid(f"{setting!r} must be a number or null")
    return Saved(
        vectors=vectors.astype(np.float32, copy=False),
        intents=intents,
        counts=counts,
        model=model,
        aggregation=aggregation,
        top_k=top_k,
        center=center,
        threshold=_float_or_none(meta.get("threshold")),
        thresholds={name: float(value) for name, value in thresholds.items()},
        margin=_float_or_none(meta.get("margin")),
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)
