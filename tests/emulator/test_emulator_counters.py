"""Counters: what the stats say after requests of every outcome, and the stats endpoints."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from phospho_embed.emulator import Emulator, EmulatorStats, count_tokens

Embed = Callable[..., httpx.Response]


def test_every_outcome_is_counted_with_its_input(
    phospho_emulator: Emulator, embed: Embed, client: httpx.Client
) -> None:
    embed("hello there")
    embed("hello there")
    embed("wrong model", model="other")  # 422
    embed(["a", "b"])  # 400
    client.post("/embeddings", content=b"{", headers={"Content-Type": "application/json"})  # 422
    httpx.post(  # 403: counted even though it never reaches the endpoint
        phospho_emulator.base_url + "/embeddings",
        json={"input": "anonymous", "model": "intent-embed"},
    )

    assert phospho_emulator.stats == EmulatorStats(
        requests=6,
        by_status={200: 2, 400: 1, 403: 1, 422: 2},
        dropped=0,
        in_flight=0,
        peak_in_flight=1,
        inputs={"hello there": 2, "wrong model": 1, "a": 1, "b": 1, "anonymous": 1},
        prompt_tokens=2 * count_tokens("hello there"),
    )


def test_other_paths_are_not_counted(phospho_emulator: Emulator, client: httpx.Client) -> None:
    httpx.get(phospho_emulator.url + "/_emulator/stats")
    httpx.get(phospho_emulator.url + "/openapi.json")

    assert phospho_emulator.stats.requests == 0


def test_a_wrong_method_is_counted_by_status(phospho_emulator: Emulator) -> None:
    response = httpx.get(phospho_emulator.base_url + "/embeddings")

    assert response.status_code == 405
    assert phospho_emulator.stats.by_status == {405: 1}


def test_snapshots_are_copies(phospho_emulator: Emulator, embed: Embed) -> None:
    embed("x")
    snapshot = phospho_emulator.stats
    snapshot.by_status[200] = 99
    snapshot.inputs.clear()

    assert phospho_emulator.stats.by_status == {200: 1}
    assert phospho_emulator.stats.inputs == {"x": 1}


def test_stats_endpoint_reports_the_counters(phospho_emulator: Emulator, embed: Embed) -> None:
    embed("one")
    embed("two", model="bad")

    plain = httpx.get(phospho_emulator.url + "/_emulator/stats").json()
    with_inputs = httpx.get(
        phospho_emulator.url + "/_emulator/stats", params={"include_inputs": "true"}
    ).json()

    cpu_seconds = plain.pop("cpu_seconds")
    assert isinstance(cpu_seconds, float)
    assert cpu_seconds > 0  # serving two requests cost something
    assert plain == {
        "requests": 2,
        "by_status": {"200": 1, "422": 1},
        "dropped": 0,
        "in_flight": 0,
        "peak_in_flight": 1,
        "prompt_tokens": count_tokens("one"),
    }
    assert with_inputs["inputs"] == {"one": 1, "two": 1}


def test_reset_endpoint_zeroes_counters_and_keeps_settings(
    phospho_emulator: Emulator, embed: Embed
) -> None:
    phospho_emulator.configure(dimensions=64)
    embed("one")

    response = httpx.post(phospho_emulator.url + "/_emulator/reset")

    assert response.status_code == 200
    assert response.json()["requests"] == 0
    assert phospho_emulator.stats == EmulatorStats()
    assert phospho_emulator.settings.dimensions == 64


def test_the_management_routes_stay_out_of_the_openapi_schema(phospho_emulator: Emulator) -> None:
    paths = httpx.get(phospho_emulator.url + "/openapi.json").json()["paths"]

    assert set(paths) == {"/v2/embeddings", "/v0/embeddings"}
