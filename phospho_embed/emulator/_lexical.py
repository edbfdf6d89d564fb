"""Lexical stand-in embeddings: hashed word and character n-gram features.

Not a language model: texts that share words (or word pieces) get similar vectors, and the
same text always gets the same vector in every process (features are hashed with blake2b, not
with Python's per-process salted ``hash``). Good enough for similarity, clustering and
retrieval demos, and for checking that a client put every vector at the right index.
"""

from __future__ import annotations

import hashlib
import math
import re
from array import array
from collections.abc import Iterator
from functools import lru_cache
from itertools import pairwise

_WORD_RE = re.compile(r"\w+")

# Whole words carry most of the meaning; bigrams reward shared word order; character trigrams
# make "cancel" and "cancelled" neighbours, as a real embedding would.
_WORD_WEIGHT = 1.0
_BIGRAM_WEIGHT = 0.5
_TRIGRAM_WEIGHT = 0.25
_HASH_PERSON = b"phospho-emu-v1"  # changing it changes every vector


# Bounded: a benchmark repeats a few thousand texts; array("d") keeps an entry at ~12 KB.
@lru_cache(maxsize=2048)
def lexical_vector(text: str, dimensions: int) -> array[float]:
    """The unit vector of ``text`` (a cached array: copy it before changing it)."""
    values = [0.0] * dimensions
    for feature, weight in _features(text):
        index, negative = _bucket(feature, dimensions)
        values[index] += -weight if negative else weight
    norm = math.sqrt(math.fsum(value * value for value in values))
    if norm == 0.0:
        # Features cancelled out exactly (possible with few dimensions): any fixed unit vector.
        values = [0.0] * dimensions
        values[_bucket("fallback:" + text, dimensions)[0]] = 1.0
        norm = 1.0
    return array("d", (value / norm for value in values))


def _features(text: str) -> Iterator[tuple[str, float]]:
    words = _WORD_RE.findall(text.lower())
    if not words:
        # Empty, whitespace or punctuation only: still one fixed vector per distinct text.
        yield "raw:" + text.strip(), 1.0
        return
    for word in words:
        yield "w:" + word, _WORD_WEIGHT
    for first, second in pairwise(words):
        yield f"b:{first} {second}", _BIGRAM_WEIGHT
    for word in words:
        padded = f"<{word}>"
        for start in range(len(padded) - 2):
            yield "c:" + padded[start : start + 3], _TRIGRAM_WEIGHT


def _bucket(feature: str, dimensions: int) -> tuple[int, bool]:
    digest = hashlib.blake2b(
        feature.encode("utf-8", "surrogatepass"), digest_size=8, person=_HASH_PERSON
    ).digest()
    number = int.from_bytes(digest, "little")
    return number % dimensions, bool(number >> 63)
