"""Shared fixtures: an httpx client pointed at the session emulator (reset for each test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from phospho_embed.emulator import Emulator

AUTH = {"Authorization": "Bearer test-key"}
TEXT = "I want to cancel my order"


@pytest.fixture
def client(phospho_emulator: Emulator) -> Iterator[httpx.Client]:
    """A client on the emulator's base URL, sending a bearer token."""
    with httpx.Client(base_url=phospho_emulator.base_url, headers=AUTH, timeout=10.0) as client:
        yield client


@pytest.fixture
def embed(client: httpx.Client) -> Callable[..., httpx.Response]:
    """POST one well-formed request; keyword arguments add or replace body fields."""

    def post(text: Any = TEXT, **fields: Any) -> httpx.Response:
        return client.post("/embeddings", json={"input": text, "model": "intent-embed", **fields})

    return post
