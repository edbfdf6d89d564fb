"""Fixtures and data for the discovery tests: synthetic clusters on the sphere, a small
CLINC150 subset, and clients aimed at the emulator.

Thresholds on CLINC150 hold for both kinds of emulator vectors (lexical hashed n-grams and
the semantic model), measured on this exact subset: lexical NMI 0.73, semantic 0.96.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from phospho_embed import PhosphoClient
from phospho_embed.emulator import Emulator

CLINC_TRAIN = Path(__file__).resolve().parents[2] / "benchmarks/data/clinc150/train.json"
#: Ten CLINC150 intents from different domains, 20 messages each.
CLINC_INTENTS = (
    "alarm",
    "book_flight",
    "credit_score",
    "weather",
    "translate",
    "play_music",
    "recipe",
    "tire_pressure",
    "restaurant_reservation",
    "transfer",
)
PER_INTENT = 20
TEST_KEY = "discovery-test-key"


def sphere_clusters(
    k: int, per: int, dim: int = 24, noise: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` well-separated clusters of ``per`` unit vectors each: random directions plus
    Gaussian noise (per coordinate ``noise / sqrt(dim)``), normalised. Returns
    (vectors (k * per, dim), labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(k), per)
    points = centres[labels] + rng.standard_normal((k * per, dim)) * noise / np.sqrt(dim)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), labels


def words_for(labels: np.ndarray) -> list[str]:
    """A message per label, sharing the label's topic words (for keyword tests)."""
    topics = ["refund money back", "parcel delivery late", "password reset login", "invoice"]
    return [f"{topics[label % len(topics)]} number {i}" for i, label in enumerate(labels)]


@pytest.fixture(scope="session")
def clinc() -> tuple[list[str], list[str]]:
    """(texts, intents) of the CLINC150 subset, intent after intent."""
    data = json.loads(CLINC_TRAIN.read_text(encoding="utf-8"))
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["in_scope"]:
        by_intent.setdefault(intent, []).append(text)
    rows = [(text, intent) for intent in CLINC_INTENTS for text in by_intent[intent][:PER_INTENT]]
    return [text for text, _ in rows], [intent for _, intent in rows]


@pytest.fixture
def client(phospho_emulator: Emulator) -> Iterator[PhosphoClient]:
    """A `PhosphoClient` on the emulator."""
    with PhosphoClient(api_key=TEST_KEY, base_url=phospho_emulator.base_url) as made:
        yield made
