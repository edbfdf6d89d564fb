"""Injected faults: dropped connections, malformed bodies, error statuses, and their schedule."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from phospho_embed.emulator import Emulator, EmulatorStats

Embed = Callable[..., httpx.Response]


def statuses(embed: Embed, count: int) -> list[int]:
    return [embed(f"request {index}").status_code for index in range(count)]


def test_drop_gives_the_client_a_transport_error_not_a_status(
    phospho_emulator: Emulator, embed: Embed, caplog: pytest.LogCaptureFixture
) -> None:
    phospho_emulator.configure(fault="drop")

    with caplog.at_level(logging.DEBUG), pytest.raises(httpx.TransportError):
        embed("dropped")

    assert phospho_emulator.stats == EmulatorStats(
        requests=1, dropped=1, peak_in_flight=1, inputs={"dropped": 1}
    )
    # Dropping on purpose is not a server error worth a traceback in the logs.
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_the_server_keeps_serving_after_a_drop(phospho_emulator: Emulator, embed: Embed) -> None:
    phospho_emulator.configure(fault="drop", fault_every=2)

    first = embed("one")
    with pytest.raises(httpx.TransportError):
        embed("two")
    third = embed("three")

    assert (first.status_code, third.status_code) == (200, 200)
    assert phospho_emulator.stats.dropped == 1


def test_malformed_is_a_200_without_the_documented_shape(
    phospho_emulator: Emulator, embed: Embed
) -> None:
    phospho_emulator.configure(fault="malformed")

    response = embed("text")

    assert response.status_code == 200
    assert response.json() == {"object": "list", "data": [], "model": "intent-embed"}
    assert phospho_emulator.stats.prompt_tokens == 0  # nothing billed for it


@pytest.mark.parametrize(
    ("retry_after", "header"), [(1.0, "1"), (0.05, "0.05"), (2, "2"), (None, None)]
)
def test_injected_429_carries_retry_after_when_configured(
    phospho_emulator: Emulator, embed: Embed, retry_after: float | None, header: str | None
) -> None:
    phospho_emulator.configure(fault="429", retry_after=retry_after)

    response = embed("text")

    assert response.status_code == 429
    assert response.headers.get("Retry-After") == header
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_injected_server_errors_carry_a_string_detail(
    phospho_emulator: Emulator, embed: Embed, status: int
) -> None:
    phospho_emulator.configure(fault=str(status))

    response = embed("text")

    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    if status == 500:
        assert response.json() == {"detail": "Failed to generate embeddings for the request."}


def test_a_fault_alone_hits_every_request(phospho_emulator: Emulator, embed: Embed) -> None:
    phospho_emulator.configure(fault="503")

    assert statuses(embed, 4) == [503] * 4


def test_fault_every_hits_exactly_every_nth_request(
    phospho_emulator: Emulator, embed: Embed
) -> None:
    phospho_emulator.configure(fault="500", fault_every=3)

    assert statuses(embed, 9) == [200, 200, 500] * 3
    assert phospho_emulator.stats.by_status == {200: 6, 500: 3}


def test_fault_every_only_counts_requests_reaching_the_fault_step(
    phospho_emulator: Emulator, embed: Embed
) -> None:
    phospho_emulator.configure(fault="502", fault_every=2)

    rejected = embed("text", model="not-intent-embed")  # 422: never reaches the fault step
    served = statuses(embed, 4)

    assert rejected.status_code == 422
    assert served == [200, 502, 200, 502]


def test_configure_restarts_the_fault_schedule(phospho_emulator: Emulator, embed: Embed) -> None:
    statuses(embed, 5)  # these count towards nothing once the schedule changes
    phospho_emulator.configure(fault="500", fault_every=2)

    assert statuses(embed, 2) == [200, 500]


def test_fault_rate_is_reproducible_for_a_seed(phospho_emulator: Emulator, embed: Embed) -> None:
    phospho_emulator.reset(fault="500", fault_rate=0.5, seed=7)
    first = statuses(embed, 30)
    phospho_emulator.reset(fault="500", fault_rate=0.5, seed=7)
    second = statuses(embed, 30)
    phospho_emulator.reset(fault="500", fault_rate=0.5, seed=8)
    other_seed = statuses(embed, 30)

    assert first == second
    assert set(first) == {200, 500}
    assert 5 <= first.count(500) <= 25
    assert other_seed != first


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 200), (1.0, 504)])
def test_fault_rate_extremes(
    phospho_emulator: Emulator, embed: Embed, rate: float, expected: int
) -> None:
    phospho_emulator.configure(fault="504", fault_rate=rate, fault_every=0)
    if rate == 0.0:  # a fault alone hits everything: turn it off to get the 0% case
        phospho_emulator.configure(fault=None)

    assert statuses(embed, 5) == [expected] * 5


def test_faults_come_after_the_cheaper_checks(phospho_emulator: Emulator, embed: Embed) -> None:
    phospho_emulator.configure(fault="500", billing_required=True)

    assert embed(["a", "b"]).status_code == 400
    assert embed("text").status_code == 402
