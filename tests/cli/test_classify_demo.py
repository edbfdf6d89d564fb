"""``phospho-embed classify`` and ``phospho-embed demo`` end to end through the emulator."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from phospho_embed.cli import main
from phospho_embed.demo_data import EXAMPLES, EXPECTED, HELD_OUT, LABELLED
from phospho_embed.emulator import Emulator, semantic_available
from tests.cli.conftest import TEST_KEY, RunCLI

EXAMPLE_COUNT = sum(len(texts) for texts in EXAMPLES.values())


@pytest.fixture
def examples_file(tmp_path: Path) -> Path:
    path = tmp_path / "examples.json"
    path.write_text(json.dumps(EXAMPLES))
    return path


def client_args(emulator: Emulator) -> list[str]:
    return ["--base-url", emulator.base_url, "--api-key", TEST_KEY]


def test_classify_prints_intent_score_and_text(
    cli: RunCLI, emulator: Emulator, examples_file: Path
) -> None:
    result = cli(
        "classify",
        "--examples",
        str(examples_file),
        "--threshold",
        "0.15",
        "where is my parcel, it is late",
        "what's the weather like on Mars?",
        *client_args(emulator),
    )
    assert result.code == 0, result.err
    first, second = result.out.splitlines()
    assert first.startswith("track_parcel\t")
    assert first.endswith("\twhere is my parcel, it is late")
    assert second.startswith("-\t")  # out of topic
    assert emulator.stats.requests == EXAMPLE_COUNT + 2


def test_classify_saves_then_loads_without_re_embedding(
    cli: RunCLI, emulator: Emulator, examples_file: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "intents.npz"
    args = client_args(emulator)
    first = cli("classify", "--examples", str(examples_file), "--save", str(saved), "refund", *args)
    assert first.code == 0, first.err
    emulator.reset_stats()
    second = cli("classify", "--examples", str(saved), "--json", "cancel my order", *args)
    assert second.code == 0, second.err
    record = json.loads(second.out)
    assert record["intent"] == "cancel_order"
    assert set(record["scores"]) == set(EXAMPLES)
    assert emulator.stats.requests == 1  # only the text, not the examples


def test_classify_saves_this_runs_threshold_and_margin(
    cli: RunCLI, emulator: Emulator, examples_file: Path, tmp_path: Path
) -> None:
    from phospho_embed.intents import IntentClassifier

    saved = tmp_path / "intents.npz"
    options = ["--threshold", "0.25", "--margin", "0.05", "--save", str(saved)]
    result = cli(
        "classify", "--examples", str(examples_file), *options, "refund", *client_args(emulator)
    )
    assert result.code == 0, result.err
    loaded = IntentClassifier.load(saved)
    assert (loaded.threshold_, loaded.margin_) == (0.25, 0.05)


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--threshold", "nan", "must be a finite number, got nan"),
        ("--threshold", "inf", "must be a finite number, got inf"),
        ("--margin", "-0.1", "must be at least 0, got -0.1"),
    ],
)
def test_classify_refuses_a_threshold_or_margin_that_compares_as_nothing(
    capsys: pytest.CaptureFixture[str],
    emulator: Emulator,
    examples_file: Path,
    option: str,
    value: str,
    says: str,
) -> None:
    # nan rejected nothing: every comparison with it is false.
    args = ["classify", "--examples", str(examples_file), option, value, "refund"]
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main([*args, *client_args(emulator)])
    assert exit_info.value.code == 2
    assert f"argument {option}: {says}" in capsys.readouterr().err
    assert emulator.stats.requests == 0


def test_classify_explains_bad_examples(cli: RunCLI, emulator: Emulator, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"refund": ["money back", "   "]}))
    result = cli("classify", "--examples", str(bad), "hello", *client_args(emulator))
    assert result.code == 2
    assert "examples['refund'][1] is empty" in result.err
    assert "Traceback" not in result.err
    assert emulator.stats.requests == 0


def test_demo_runs_on_its_own_emulator(tmp_path: Path) -> None:
    # As `make demo` runs it: a process, no key in the environment, a local emulator.
    command = ["demo", "--latency", "0.05", "--report-dir", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "phospho_embed.cli", *command],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "No PHOSPHO_API_KEY: using a local emulator" in out
    for title in ("1. Classify", "2. LangChain", "3. LlamaIndex", "4. Discover", "5. Speed"):
        assert title in out
    report = tmp_path / "intents.html"
    assert f"The report (map, table, quality): {report}" in out
    assert "<table" in report.read_text()
    assert out.count("OUT OF TOPIC") == 2
    assert out.count("Sorry, I can only help") == 4  # out of topic, LangChain and LlamaIndex
    assert "x faster" in out
    assert "measured on 16 others: accuracy" in out  # not on the texts it was fitted on
    if semantic_available():
        assert "Its vectors are semantic vectors from WordLlama l2_supercat" in out
        # Every fresh message lands where it was meant to, by meaning alone.
        assert "(meant:" not in out
        for text, intent in EXPECTED:
            assert f"{text:<48} -> {intent or 'OUT OF TOPIC'}" in out
        # Gap analysis finds the two intents the examples do not cover.
        assert "what it rejects holds 2 new ones" in out
        assert "code, coupon, discount" in out
        assert "open, shop, time" in out


# Words that carry no intent: the demo's paraphrases may share these, and only these.
_FUNCTION_WORDS = """
a an the i i'd i'm me my you your it is are was be been do does did to of in on at for with
from by about as up out not no can could would will should please and or but so if that this
there what when where why how who which just now still some any all am has have had
"""
FUNCTION_WORDS = set(_FUNCTION_WORDS.split())


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", text.lower()) if w not in FUNCTION_WORDS}


def test_the_demo_messages_are_paraphrases_of_their_intents_examples() -> None:
    for text, intent in EXPECTED:
        if intent is not None:
            shared = content_words(text) & set().union(*map(content_words, EXAMPLES[intent]))
            assert not shared, (text, shared)
    # Thresholds are fitted on one set and measured on another: no text in both.
    assert not {t for t, _ in LABELLED} & {t for t, _ in HELD_OUT}


def test_classify_without_numpy_says_which_extra(
    cli: RunCLI, emulator: Emulator, examples_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy now fails
    monkeypatch.delitem(sys.modules, "phospho_embed.intents", raising=False)
    result = cli("classify", "--examples", str(examples_file), "refund", *client_args(emulator))
    assert result.code == 2
    assert "phospho-embed[intents]" in result.err
    assert "Traceback" not in result.err


def test_an_empty_api_key_option_is_no_key_even_with_one_in_the_environment(
    cli: RunCLI, emulator: Emulator, examples_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOSPHO_API_KEY", TEST_KEY)
    result = cli(
        "classify",
        "--examples",
        str(examples_file),
        "--base-url",
        emulator.base_url,
        "--api-key",
        "",
        "refund",
    )
    assert result.code == 2
    assert "no API key" in result.err
    assert emulator.stats.requests == 0


def test_classify_texts_that_outlast_their_retries_exit_1(
    cli: RunCLI, emulator: Emulator, examples_file: Path
) -> None:
    saved = examples_file.with_suffix(".npz")
    built = cli(
        "classify",
        "--examples",
        str(examples_file),
        "--save",
        str(saved),
        "refund",
        *client_args(emulator),
    )
    assert built.code == 0, built.err
    emulator.configure(fault="500")  # every request fails
    result = cli(
        "classify", "--examples", str(saved), "--max-retries", "0", "refund", *client_args(emulator)
    )
    assert result.code == 1
    assert "ServerError" in result.err
    assert "Traceback" not in result.err
