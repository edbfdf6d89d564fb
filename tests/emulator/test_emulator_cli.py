"""The command line: options, validation, and a real server process."""

from __future__ import annotations

import dataclasses
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading

import httpx
import pytest

from phospho_embed.emulator import EmulatorSettings, build_parser, main
from phospho_embed.emulator.cli import API_KEY_ENV, settings_from_args

FLAGS = [
    "--host",
    "--port",
    "--api-key",
    "--dimensions",
    "--vectors",
    "--latency",
    "--jitter",
    "--fault",
    "--fault-rate",
    "--fault-every",
    "--retry-after",
    "--slow-latency",
    "--max-in-flight",
    "--billing-required",
    "--seed",
    "--log-level",
]


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])

    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in out


def test_every_setting_has_its_option_generated_from_its_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out

    for setting in dataclasses.fields(EmulatorSettings):
        assert (f"--{setting.name.replace('_', '-')}" in out) is setting.init
    # What the fields' metadata adds: a placeholder, and the variable read for the key.
    assert "--fault KIND[,KIND...]" in out
    assert f"${API_KEY_ENV}" in out


def test_every_flag_maps_onto_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    args = build_parser().parse_args(
        shlex.split(
            "--api-key k --dimensions 8 --vectors lexical --latency 0.5 --jitter 0.1 "
            "--fault 429 --fault-rate 0.25 --fault-every 4 --retry-after 2 --slow-latency 1.5 "
            "--max-in-flight 3 --billing-required --seed 5"
        )
    )

    assert settings_from_args(args) == EmulatorSettings(
        api_key="k",
        dimensions=8,
        vectors="lexical",
        latency=0.5,
        jitter=0.1,
        fault="429",
        fault_rate=0.25,
        fault_every=4,
        retry_after=2.0,
        slow_latency=1.5,
        max_in_flight=3,
        billing_required=True,
        seed=5,
    )


def test_defaults_match_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    args = build_parser().parse_args([])

    assert (args.host, args.port, args.log_level) == ("127.0.0.1", 8000, "warning")
    assert settings_from_args(args) == EmulatorSettings()


def test_the_api_key_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "from-env")

    assert settings_from_args(build_parser().parse_args([])).api_key == "from-env"
    assert settings_from_args(build_parser().parse_args(["--api-key", "x"])).api_key == "x"


@pytest.mark.parametrize(
    "argv",
    [
        ["--fault-rate", "0.5"],
        ["--latency", "-1"],
        ["--fault", "418"],
        ["--dimensions", "0"],
        # The kind of value each option takes comes from its field's annotation.
        ["--dimensions", "1.5"],
        ["--vectors", "fuzzy"],
        ["--billing-required", "yes"],
    ],
)
def test_bad_options_exit_with_status_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None
    # readline() has no timeout: read in a thread so a silent process fails the test, not hangs it.
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_the_module_serves_until_interrupted(stop_signal: signal.Signals) -> None:
    env = {**os.environ, API_KEY_ENV: "cli-key"}
    process = subprocess.Popen(
        [sys.executable, "-m", "phospho_embed.emulator", "--port", "0", "--dimensions", "128"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = _first_line(process, timeout=30)
        match = re.fullmatch(r"phospho emulator listening on (http://127\.0\.0\.1:\d+/v2)\n", line)
        assert match, line
        base_url = match.group(1)
        body = {"input": "hello", "model": "intent-embed"}

        good = httpx.post(
            f"{base_url}/embeddings", json=body, headers={"Authorization": "Bearer cli-key"}
        )
        bad = httpx.post(
            f"{base_url}/embeddings", json=body, headers={"Authorization": "Bearer no"}
        )

        assert good.status_code == 200
        assert len(good.json()["data"][0]["embedding"]) == 128
        assert bad.status_code == 401
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
