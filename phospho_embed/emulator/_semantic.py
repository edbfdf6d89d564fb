"""Semantic stand-in embeddings: WordLlama's static model, read offline from its wheel.

The model is WordLlama ``l2_supercat`` (Lee Miller, 2024; the ``wordllama`` package, MIT
licence): a table of 256-dimensional token vectors distilled from the token embeddings of
Llama 2 (Meta, Llama 2 Community License), trained with Matryoshka prefixes so that its first
64 and 128 dimensions are embeddings of their own. A text's vector is the mean of its tokens'
vectors, normalised: paraphrases land close ("I want my money back" and "please refund my
order" score about 0.4, unrelated messages about 0), but word order and negation are ignored
("cancel my order" and "do not cancel my order" are near twins).

Only the two files inside the wheel are read (``wordllama/weights/l2_supercat_256.safetensors``
and ``wordllama/tokenizers/l2_supercat_tokenizer_config.json``), located with
``importlib.util.find_spec`` and never imported: ``import wordllama`` reconfigures the root
logger (``logging.basicConfig``) and ``WordLlama.load`` looks for its tokenizer on a model
hub. Nothing here touches the network or a logger.

**Bit-identical everywhere.** The weights are float16, so every token value is a multiple of
2**-24 of magnitude under 16 (checked at load): every partial float64 sum of them is exactly
representable for any text under 2**25 tokens, so the sum is exact whatever the summation
order, SIMD width or numpy version. The norm is taken with
``math.fsum`` (correctly rounded), and the lift below uses only element-wise operations.

**The lift to the API's 1536 dimensions** is a fixed linear map ``Q`` with orthonormal columns
(``Q.T @ Q = I``), so norms and cosines are exactly the model's: each of the ``D`` output
coordinates takes one model coordinate (``p mod 256``) with a hashed sign, scaled by one over
the square root of how many coordinates share it (disjoint supports: orthonormal), then each
full block of 256 coordinates is mixed by a normalised Walsh-Hadamard transform (orthogonal),
so the vector looks dense like a real embedding rather than six signed copies.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

MODEL_NAME = "WordLlama l2_supercat"
"""The model behind ``vectors="semantic"``."""

MODEL_DIMENSIONS = 256
"""The model's own size; 64 and 128 are its Matryoshka prefixes."""

PREFIX_DIMENSIONS = (64, 128, 256)
"""Sizes served as the model's own (normalised) prefix; larger sizes are lifted exactly."""

INSTALL_HINT = "pip install 'phospho-embed[semantic]'"
"""How to get the model (the ``wordllama`` wheel, ``tokenizers``, ``safetensors``, numpy)."""

_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
_TENSOR = "embedding.weight"
_REQUIRED_MODULES = ("numpy", "tokenizers", "safetensors")
_SIGN_PERSON = b"phospho-emu-sem1"  # changing it changes every lifted vector


class SemanticModelUnavailableError(ImportError):
    """The semantic model (the ``semantic`` extra) is not installed, or its files are missing."""


@dataclass(frozen=True)
class _Model:
    tokenizer: Any  # tokenizers.Tokenizer (untyped package)
    weights: NDArray[Any]  # (vocabulary, 256) float16


# Cached: every emulator_vector call asks, and installing packages mid-process is rare.
@lru_cache(maxsize=1)
def model_files() -> tuple[Path, Path] | None:
    """The weights and tokenizer files inside the installed ``wordllama`` wheel, or ``None``.

    Found without importing any of the packages (importing ``wordllama`` would configure the
    root logger).
    """
    for module in _REQUIRED_MODULES:
        if importlib.util.find_spec(module) is None:
            return None
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    weights, tokenizer = root.joinpath(*_WEIGHTS), root.joinpath(*_TOKENIZER)
    if not (weights.is_file() and tokenizer.is_file()):
        return None
    return weights, tokenizer


def semantic_available() -> bool:
    """Whether ``vectors="semantic"`` can be served here (the model's files are installed)."""
    return model_files() is not None


_load_lock = threading.Lock()
_loaded: _Model | None = None


def load_model() -> _Model:
    """The model, loaded once per process (about 0.2 s and 16 MB); thread-safe.

    Raises:
        SemanticModelUnavailableError: the ``semantic`` extra is not installed.
    """
    global _loaded
    with _load_lock:
        if _loaded is None:
            _loaded = _read_model()
        return _loaded


def _read_model() -> _Model:
    files = model_files()
    if files is None:
        raise SemanticModelUnavailableError(
            f"semantic vectors need the {MODEL_NAME} model from the wordllama package: "
            f"{INSTALL_HINT}, or use vectors='lexical'"
        )
    weights_path, tokenizer_path = files
    import numpy as np
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    weights = load_file(str(weights_path))[_TENSOR]
    # The exactness argument of the module docstring needs float16 values under 16.
    if weights.dtype != np.float16 or weights.ndim != 2 or weights.shape[1] != MODEL_DIMENSIONS:
        raise SemanticModelUnavailableError(
            f"unexpected {MODEL_NAME} weights in {weights_path}: {weights.dtype} "
            f"{weights.shape}, expected float16 (vocabulary, {MODEL_DIMENSIONS})"
        )
    if not float(np.abs(weights.astype(np.float32)).max()) < 16.0:
        raise SemanticModelUnavailableError(f"unexpected {MODEL_NAME} weights: values >= 16")
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    # Like WordLlama: whole texts, no special tokens. encode() (one text) never starts the
    # tokenizer's thread pool, so the model does not compete with the server for cores.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return _Model(tokenizer=tokenizer, weights=weights)


def semantic_size(dimensions: int) -> bool:
    """Whether semantic vectors come in that size: 64, 128, 256 or more than 256."""
    return dimensions >= MODEL_DIMENSIONS or dimensions in PREFIX_DIMENSIONS


def check_dimensions(dimensions: int) -> None:
    """Refuse a size the semantic vectors cannot have (``ValueError`` saying which can)."""
    if not semantic_size(dimensions):
        raise ValueError(
            f"semantic vectors have 64, 128 or 256 dimensions (the model's own) or any size "
            f"above 256 (lifted exactly), got dimensions={dimensions}; lexical vectors "
            "(vectors='lexical', --vectors lexical) have any size"
        )


def semantic_vector(text: str, dimensions: int) -> NDArray[Any]:
    """The unit float64 vector of ``text``, shape ``(dimensions,)``; a cached, read-only array.

    Raises:
        ValueError: ``dimensions`` is not a size semantic vectors have (see ``check_dimensions``).
        SemanticModelUnavailableError: the model is not installed.
    """
    check_dimensions(dimensions)
    return _cached_vector(text, dimensions)


# Bounded: benchmarks repeat a few thousand texts; an entry is 12 KB at 1536 dimensions.
@lru_cache(maxsize=2048)
def _cached_vector(text: str, dimensions: int) -> NDArray[Any]:
    import numpy as np

    model = load_model()
    # The tokenizer takes only valid UTF-8: a lone surrogate (legal in JSON) becomes "?".
    valid = text.encode("utf-8", "replace").decode("utf-8")
    ids = model.tokenizer.encode(valid, add_special_tokens=False).ids
    total = model.weights[ids].sum(axis=0, dtype=np.float64) if ids else None
    size = min(dimensions, MODEL_DIMENSIONS)
    norm = _norm(total[:size]) if total is not None else 0.0
    if total is None or norm == 0.0:
        # No token (empty text), where the model's mean is NaN: a fixed unit vector per text.
        vector = _fallback(text, dimensions)
    else:
        unit = total[:size] / norm
        vector = unit if dimensions <= MODEL_DIMENSIONS else _lift(unit, dimensions)
    vector.flags.writeable = False
    return vector


def _norm(values: NDArray[Any]) -> float:
    # fsum is correctly rounded: the same norm whatever numpy's reduction order.
    return math.sqrt(math.fsum((values * values).tolist()))


def _lift(unit: NDArray[Any], dimensions: int) -> NDArray[Any]:
    import numpy as np

    lifted: NDArray[Any] = np.resize(unit, dimensions) * _lift_factors(dimensions)
    blocks = dimensions // MODEL_DIMENSIONS
    head = lifted[: blocks * MODEL_DIMENSIONS].reshape(blocks, MODEL_DIMENSIONS)
    lifted[: blocks * MODEL_DIMENSIONS] = _hadamard(head).reshape(-1)
    return lifted


@lru_cache(maxsize=8)
def _lift_factors(dimensions: int) -> NDArray[Any]:
    """For each output coordinate: a hashed sign over sqrt(copies of its source coordinate)."""
    import numpy as np

    seed = hashlib.blake2b(
        dimensions.to_bytes(8, "little"), digest_size=16, person=_SIGN_PERSON
    ).digest()
    bits = np.unpackbits(np.frombuffer(hashlib.shake_256(seed).digest(dimensions), np.uint8))
    signs = 1.0 - 2.0 * bits[:dimensions].astype(np.float64)
    copies = np.bincount(np.arange(dimensions) % MODEL_DIMENSIONS, minlength=MODEL_DIMENSIONS)
    factors: NDArray[Any] = np.array(
        [sign / math.sqrt(copies[p % MODEL_DIMENSIONS]) for p, sign in enumerate(signs)]
    )
    return factors


def _hadamard(blocks: NDArray[Any]) -> NDArray[Any]:
    """A normalised Walsh-Hadamard transform of each row (its length a power of two).

    Each of the log2(n) butterfly stages maps the pairs (even, odd) to (sum, difference) into
    the two halves: orthogonal up to the final 1/sqrt(n), which for n = 256 is 1/16, a power
    of two, so the scaling is exact. Element-wise ufuncs only: no BLAS, no reduction.
    """
    import numpy as np

    size = blocks.shape[1]
    half = size // 2
    source, target = blocks.copy(), np.empty_like(blocks)
    for _ in range(size.bit_length() - 1):
        even, odd = source[:, 0::2], source[:, 1::2]
        np.add(even, odd, out=target[:, :half])
        np.subtract(even, odd, out=target[:, half:])
        source, target = target, source
    source *= 1.0 / math.sqrt(size)
    mixed: NDArray[Any] = source
    return mixed


def _fallback(text: str, dimensions: int) -> NDArray[Any]:
    import numpy as np

    digest = hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=8, person=_SIGN_PERSON
    ).digest()
    vector = np.zeros(dimensions)
    vector[int.from_bytes(digest, "little") % dimensions] = 1.0
    return vector
