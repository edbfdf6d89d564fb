"""Semantic vectors: the WordLlama model read offline, lifted exactly, and how "auto" picks."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import numpy as np
import pytest

from phospho_embed.emulator import (
    Emulator,
    EmulatorSettings,
    SemanticModelUnavailableError,
    _semantic,
    emulator_vector,
    resolve_vectors,
)
from phospho_embed.emulator.cli import build_parser, settings_from_args
from tests.helpers import requires_semantic

ROOT = Path(__file__).resolve().parents[2]

# Paraphrases of one intent that share no content word, and messages about something else.
PARAPHRASES = [
    ("I want my money back", "please refund my order"),
    ("my package has not arrived yet", "when will the delivery come"),
    ("I forgot my password", "I cannot log in to my account"),
    ("change my delivery address", "update where you send my parcels"),
]
UNRELATED = [
    "what is the weather like in Paris tomorrow",
    "tell me a joke about cats",
    "recommend a good pizza recipe",
]


def vec(text: str, dimensions: int = 1536) -> np.ndarray:
    return np.array(emulator_vector(text, dimensions, vectors="semantic"))


@requires_semantic
def test_paraphrases_score_clearly_higher_than_unrelated_messages() -> None:
    for first, second in PARAPHRASES:
        together = vec(first) @ vec(second)
        apart = max(vec(first) @ vec(other) for other in UNRELATED)
        assert together > apart + 0.2, (first, second, together, apart)


@requires_semantic
def test_the_lift_preserves_norms_and_cosines_exactly() -> None:
    texts = ["I want my money back", "please refund my order", "tell me a joke about cats"]
    model = [vec(t, 256) for t in texts]
    for dimensions in (257, 300, 512, 1000, 1536, 3072):
        lifted = [vec(t, dimensions) for t in texts]
        for i, a in enumerate(lifted):
            assert len(a) == dimensions
            assert math.isclose(float(a @ a), 1.0, abs_tol=1e-12)
            for j, b in enumerate(lifted):
                assert math.isclose(float(a @ b), float(model[i] @ model[j]), abs_tol=1e-12)


@requires_semantic
def test_the_lift_has_orthonormal_columns_and_dense_output() -> None:
    for dimensions in (257, 1000, 1536):
        columns = np.stack([_semantic._lift(row, dimensions) for row in np.eye(256)], axis=1)
        assert np.abs(columns.T @ columns - np.eye(256)).max() < 1e-12
    # Mixed by the Hadamard blocks: a real-looking vector, not six signed copies of one.
    values = vec("I want my money back")
    assert len(np.unique(np.abs(values).round(12))) > 1400


@requires_semantic
@pytest.mark.parametrize("dimensions", [64, 128, 256])
def test_small_sizes_are_the_models_own_matryoshka_prefix(dimensions: int) -> None:
    full = vec("I want to cancel my order", 256)
    prefix = full[:dimensions] / np.linalg.norm(full[:dimensions])

    assert np.allclose(vec("I want to cancel my order", dimensions), prefix, atol=1e-12)


@requires_semantic
@pytest.mark.parametrize("dimensions", [1, 8, 63, 100, 200, 255])
def test_other_sizes_below_256_are_refused_clearly(dimensions: int) -> None:
    message = rf"64, 128 or 256 .* got dimensions={dimensions}; lexical vectors .* have any"
    with pytest.raises(ValueError, match=message):
        emulator_vector("a", dimensions, vectors="semantic")
    with pytest.raises(ValueError, match=message):
        EmulatorSettings(dimensions=dimensions, vectors="semantic")


@requires_semantic
def test_vectors_are_bit_identical_to_the_recorded_ones() -> None:
    # Recorded once: any machine, numpy version or summation order must give these bytes.
    expected = {
        1536: "5416f7db09b1bc0c3affd7aa50dea12b9b922851708725df87022d9e0db6d28d",
        64: "36b85a9c0324bd3ed3de27901fa3aafc5d63da477373a6e9c2aa291279944023",
    }
    for dimensions, digest in expected.items():
        data = np.array(emulator_vector("I want to cancel my order", dimensions, "semantic"))
        assert hashlib.sha256(data.tobytes()).hexdigest() == digest


@requires_semantic
def test_the_vectors_are_wordllamas_own() -> None:
    """Against the package's own inference code, in a subprocess (it configures logging)."""
    texts = ["I want my money back", "where is my parcel?", "Tell me a joke, please!"]
    code = textwrap.dedent(
        f"""
        import json
        from phospho_embed.emulator._semantic import model_files
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
        from wordllama import WordLlamaInference

        weights, tokenizer = model_files()
        model = WordLlamaInference(
            load_file(str(weights))["embedding.weight"], Tokenizer.from_file(str(tokenizer))
        )
        print(json.dumps(model.embed({texts!r}, norm=True).tolist()))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    theirs = np.array(json.loads(out))
    ours = np.stack([vec(text, 256) for text in texts])

    assert np.abs(theirs - ours).max() < 1e-6


@requires_semantic
def test_serving_offline_touches_no_network_no_root_logger_and_no_wordllama_import() -> None:
    code = textwrap.dedent(
        """
        import json, logging, socket, sys

        def refuse(*args, **kwargs):
            raise OSError("network access during the test")

        real_connect = socket.socket.connect
        def loopback_only(sock, address):
            if not str(address[0]).startswith("127."):
                refuse()
            return real_connect(sock, address)

        real_getaddrinfo = socket.getaddrinfo
        def resolve_loopback_only(host, *args, **kwargs):
            if host not in ("127.0.0.1", "localhost"):
                refuse()
            return real_getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = loopback_only
        socket.getaddrinfo = resolve_loopback_only

        import httpx
        from phospho_embed.emulator import Emulator

        before = (list(logging.root.handlers), logging.root.level)
        with Emulator(vectors="semantic").start() as emu:
            response = httpx.post(
                emu.base_url + "/embeddings",
                json={"input": "I want my money back", "model": "intent-embed"},
                headers={"Authorization": "Bearer k"},
            )
        print(json.dumps({
            "status": response.status_code,
            "length": len(response.json()["data"][0]["embedding"]),
            "root_unchanged": before == (list(logging.root.handlers), logging.root.level),
            "wordllama_imported": "wordllama" in sys.modules,
        }))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout

    assert json.loads(out) == {
        "status": 200,
        "length": 1536,
        "root_unchanged": True,
        "wordllama_imported": False,
    }


@requires_semantic
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_embedding_starts_no_tokenizer_thread_pool() -> None:
    _semantic.load_model()
    threads = len(os.listdir("/proc/self/task"))
    for i in range(200):
        emulator_vector(f"a message to embed, number {i}", vectors="semantic")

    assert len(os.listdir("/proc/self/task")) == threads


@requires_semantic
def test_the_server_sends_exactly_emulator_vector(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="phospho_embed.emulator")
    with Emulator(vectors="semantic", dimensions=1536).start() as emu:
        response = httpx.post(
            emu.base_url + "/embeddings",
            json={"input": "please refund my order", "model": "intent-embed"},
            headers={"Authorization": "Bearer k"},
        )

    assert response.json()["data"][0]["embedding"] == emulator_vector(
        "please refund my order", 1536, "semantic"
    )
    assert "semantic vectors from WordLlama l2_supercat" in caplog.text
    assert "256 dimensions lifted exactly to 1536" in caplog.text


def test_switching_kinds_at_run_time_changes_the_vectors(phospho_emulator: Emulator) -> None:
    phospho_emulator.configure(vectors="lexical", dimensions=64)
    body = {"input": "please refund my order", "model": "intent-embed"}
    headers = {"Authorization": "Bearer k"}
    lexical = httpx.post(phospho_emulator.base_url + "/embeddings", json=body, headers=headers)

    assert lexical.json()["data"][0]["embedding"] == emulator_vector(
        "please refund my order", 64, "lexical"
    )
    if phospho_emulator.configure(vectors="auto").vector_kind == "semantic":
        semantic = httpx.post(phospho_emulator.base_url + "/embeddings", json=body, headers=headers)
        assert semantic.json()["data"][0]["embedding"] == emulator_vector(
            "please refund my order", 64, "semantic"
        )


# --- how "auto" and the environment choose ---------------------------------------------------


@pytest.fixture
def without_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine where the semantic extra is not installed."""
    monkeypatch.setattr(_semantic, "model_files", lambda: None)


@requires_semantic
def test_auto_is_semantic_where_the_model_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHOSPHO_EMULATOR_VECTORS", raising=False)

    assert resolve_vectors() == "semantic"
    assert EmulatorSettings().vector_kind == "semantic"
    assert emulator_vector("hello") == emulator_vector("hello", vectors="semantic")


@pytest.mark.usefixtures("without_model")
def test_auto_falls_back_to_lexical_and_says_how_to_get_semantic(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PHOSPHO_EMULATOR_VECTORS", raising=False)
    caplog.set_level("INFO", logger="phospho_embed.emulator")

    settings = EmulatorSettings()
    with Emulator(settings).start() as emu:
        assert emu.vectors_description.startswith("lexical vectors")

    assert settings.vector_kind == "lexical"
    assert emulator_vector("hello", 7) == emulator_vector("hello", 7, vectors="lexical")
    lines = [r.getMessage() for r in caplog.records if r.name == "phospho_embed.emulator"]
    assert len(lines) == 1
    assert "pip install 'phospho-embed[semantic]'" in lines[0]


@pytest.mark.usefixtures("without_model")
def test_asking_for_semantic_without_the_model_is_a_clear_error() -> None:
    with pytest.raises(
        SemanticModelUnavailableError, match=r"pip install 'phospho-embed\[semantic\]'"
    ):
        EmulatorSettings(vectors="semantic")
    with pytest.raises(SemanticModelUnavailableError, match="semantic"):
        emulator_vector("hello", vectors="semantic")
    parser = build_parser()
    with pytest.raises(ValueError, match=r"phospho-embed\[semantic\]"):
        settings_from_args(parser.parse_args(["--vectors", "semantic"]))


def test_the_environment_variable_sets_the_default_and_the_flag_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PHOSPHO_EMULATOR_VECTORS", "lexical")
    parser = build_parser()

    assert EmulatorSettings().vectors == "lexical"
    assert emulator_vector("hello", 64) == emulator_vector("hello", 64, vectors="lexical")
    assert settings_from_args(parser.parse_args([])).vector_kind == "lexical"
    assert settings_from_args(parser.parse_args(["--vectors", "auto"])).vectors == "auto"
    monkeypatch.setenv("PHOSPHO_EMULATOR_VECTORS", "dense")
    with pytest.raises(ValueError, match=r"\$PHOSPHO_EMULATOR_VECTORS must be one of"):
        EmulatorSettings()


def test_an_unknown_kind_in_the_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="vectors must be one of"):
        EmulatorSettings(vectors="dense")  # type: ignore[arg-type]  # wrong on purpose


@requires_semantic
def test_the_module_command_serves_semantic_vectors_and_says_so() -> None:
    command = [sys.executable, "-m", "phospho_embed.emulator", "--port", "0"]
    with subprocess.Popen(
        [*command, "--vectors", "semantic"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
            described = process.stdout.readline()
            response = httpx.post(
                base_url + "/embeddings",
                json={"input": "I want my money back", "model": "intent-embed"},
                headers={"Authorization": "Bearer k"},
                timeout=10,
            )
        finally:
            process.terminate()
            process.wait(timeout=10)

    assert described.startswith("vectors: semantic vectors from WordLlama l2_supercat")
    assert response.json()["data"][0]["embedding"] == emulator_vector(
        "I want my money back", 1536, "semantic"
    )


@requires_semantic
def test_auto_serves_lexical_vectors_at_sizes_the_model_has_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same settings work on every machine: only an explicit "semantic" refuses a size.
    monkeypatch.delenv("PHOSPHO_EMULATOR_VECTORS", raising=False)
    settings = EmulatorSettings(dimensions=8)

    assert settings.vector_kind == "lexical"
    assert EmulatorSettings(dimensions=64).vector_kind == "semantic"
    assert emulator_vector("hello", 100) == emulator_vector("hello", 100, vectors="lexical")
    with Emulator(settings).start() as emu:
        assert emu.vectors_description.endswith(
            "; semantic vectors have 64, 128, 256 or more than 256 dimensions"
        )
