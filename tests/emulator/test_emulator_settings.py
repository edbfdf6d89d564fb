"""Settings validation, and configure/reset on an Emulator."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import httpx
import pytest

from phospho_embed.emulator import FAULTS, Emulator, EmulatorSettings
from phospho_embed.emulator._settings import SettingsChanges
from phospho_embed.emulator._state import EmulatorState


def test_defaults() -> None:
    settings = EmulatorSettings()

    assert settings.api_key is None
    assert settings.dimensions == 1536
    assert (settings.latency, settings.jitter) == (0.0, 0.0)
    assert (settings.fault, settings.fault_rate, settings.fault_every) == (None, 0.0, 0)
    assert (settings.retry_after, settings.max_in_flight) == (None, None)
    assert (settings.billing_required, settings.seed) == (False, 0)


def test_the_keyword_arguments_type_lists_every_setting_with_its_type() -> None:
    # Emulator(**changes), configure and reset are typed by SettingsChanges, written by hand.
    hints = typing.get_type_hints(EmulatorSettings)
    settings = {f.name: hints[f.name] for f in dataclasses.fields(EmulatorSettings) if f.init}

    assert typing.get_type_hints(SettingsChanges) == settings


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key", ""),
        ("dimensions", 0),
        ("dimensions", 1.5),
        ("latency", -0.1),
        ("latency", float("inf")),
        ("latency", "1"),
        ("jitter", -1),
        ("fault", "418"),
        ("fault", 500),
        ("fault_rate", 1.5),
        ("fault_rate", -0.1),
        ("fault_every", -1),
        ("retry_after", -1.0),
        ("max_in_flight", 0),
        ("billing_required", "yes"),
        ("seed", 1.5),
        ("latency", True),
    ],
)
def test_invalid_values_raise_a_value_error_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        EmulatorSettings(**{field: value})


@pytest.mark.parametrize("fault", FAULTS)
def test_every_documented_fault_is_accepted(fault: str) -> None:
    assert EmulatorSettings(fault=fault).fault == fault


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(None, None), (0, "0"), (1.0, "1"), (2, "2"), (0.05, "0.05"), (1.5, "1.5")],
)
def test_retry_after_header_format(seconds: float | None, header: str | None) -> None:
    assert EmulatorSettings(retry_after=seconds).retry_after_header == header


def test_the_api_key_stays_out_of_reprs() -> None:
    settings = EmulatorSettings(api_key="sk-very-secret")

    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in repr(Emulator(settings))


def test_keyword_shortcuts_override_the_given_settings() -> None:
    assert Emulator(latency=0.05).settings == EmulatorSettings(latency=0.05)
    assert Emulator(EmulatorSettings(seed=3), latency=0.1).settings == EmulatorSettings(
        seed=3, latency=0.1
    )
    assert Emulator(settings=EmulatorSettings(seed=4)).settings.seed == 4


def test_configure_changes_settings_and_rejects_bad_values_atomically() -> None:
    emulator = Emulator()

    new = emulator.configure(latency=0.2, fault="500")
    with pytest.raises(ValueError, match="fault_rate"):
        emulator.configure(latency=0.3, fault_rate=2.0)
    with pytest.raises(TypeError):
        emulator.configure(no_such_knob=1)  # type: ignore[call-arg]  # an unknown knob, on purpose

    assert new == EmulatorSettings(latency=0.2, fault="500")
    assert emulator.settings == new


def test_reset_goes_back_to_the_construction_settings_plus_changes() -> None:
    emulator = Emulator(dimensions=128)
    emulator.configure(latency=1.0, billing_required=True)

    emulator.reset(seed=9)

    assert emulator.settings == EmulatorSettings(dimensions=128, seed=9)


def test_reset_zeroes_the_counters_and_reset_stats_keeps_the_settings() -> None:
    emulator = Emulator(dimensions=64)
    body = {"input": "a", "model": "intent-embed"}
    with emulator.start() as emu, httpx.Client(base_url=emu.base_url) as client:
        client.post("/embeddings", json=body, headers={"Authorization": "Bearer k"})
        emu.configure(latency=0.01)
        assert emu.stats.requests == 1
        emu.reset_stats()
        assert emu.stats.requests == 0
        assert emu.settings.latency == 0.01

        client.post("/embeddings", json=body, headers={"Authorization": "Bearer k"})
        emu.reset()
        assert emu.stats == type(emu.stats)()
        assert emu.settings == EmulatorSettings(dimensions=64)


def test_jitter_spreads_delays_over_the_interval_reproducibly() -> None:
    settings = EmulatorSettings(latency=0.1, jitter=0.05, seed=1)
    state = EmulatorState(settings)
    delays = [state.draw_delay(settings) for _ in range(200)]
    again = EmulatorState(settings)

    assert all(0.05 <= delay <= 0.15 for delay in delays)
    assert len(set(delays)) > 100
    assert delays == [again.draw_delay(settings) for _ in range(200)]


def test_jitter_never_makes_a_negative_delay() -> None:
    settings = EmulatorSettings(latency=0.01, jitter=0.5)
    state = EmulatorState(settings)

    assert all(state.draw_delay(settings) >= 0 for _ in range(200))


def test_settings_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EmulatorSettings().latency = 1.0  # type: ignore[misc]  # assigning a frozen field, on purpose
