"""Bad and degenerate inputs: a clear error naming what and where, or a documented result,
never a traceback from inside scikit-learn; and no optional package needed to import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

from phospho_embed.discovery import adiscover_intents, discover_intents
from phospho_embed.intents import IntentClassifier
from tests.discovery.conftest import sphere_clusters, words_for


def test_no_messages() -> None:
    with pytest.raises(ValueError, match="texts is empty"):
        discover_intents([], vectors=np.zeros((0, 4)))


def test_one_message_is_in_no_intent_by_default_and_its_own_with_min_size_1() -> None:
    found = discover_intents(["hello"], vectors=[[1.0, 0.0, 0.0]])
    assert found.intents == []
    assert found.labels.tolist() == [-1]
    assert found.selection.method == "none"
    assert found.assign([[1.0, 0.0, 0.0]]).tolist() == [-1]
    own = discover_intents(["hello"], vectors=[[1.0, 0.0, 0.0]], min_size=1)
    assert own.labels.tolist() == [0]
    assert own.intents[0].examples == ["hello"]


def test_identical_messages_make_one_intent() -> None:
    found = discover_intents(["refund please"] * 12, vectors=np.tile([0.6, 0.8, 0.0], (12, 1)))
    assert found.selection.method == "single"
    assert [intent.size for intent in found.intents] == [12]
    assert found.labels.tolist() == [0] * 12
    assert found.intents[0].examples == ["refund please"]  # distinct examples only
    assert found.intents[0].name == "refund"


def test_duplicates_do_not_push_the_rest_out() -> None:
    vectors, labels = sphere_clusters(3, 10, dim=16, seed=8)
    repeated = np.vstack([np.repeat(vectors[:1], 60, axis=0), vectors])
    found = discover_intents(
        words_for(np.concatenate([np.zeros(60, int), labels])), vectors=repeated
    )
    assert found.coverage > 0.9


def test_mixed_lengths_are_named() -> None:
    with pytest.raises(ValueError, match=r"vectors\[2\] has 2 values but vectors\[0\] has 3"):
        discover_intents(["a", "b", "c"], vectors=[[1, 0, 0], [0, 1, 0], [1, 1]])


def test_nan_is_named() -> None:
    vectors = np.eye(3)
    vectors[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"vectors\[1\] holds a NaN"):
        discover_intents(["a", "b", "c"], vectors=vectors)


def test_an_all_zero_vector_is_named() -> None:
    with pytest.raises(ValueError, match=r"vectors\[1\] is all zeros"):
        discover_intents(["a", "b"], vectors=[[1.0, 0.0], [0.0, 0.0]])


def test_texts_and_vectors_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="expected 3 vectors, got 2"):
        discover_intents(["a", "b", "c"], vectors=np.eye(2))


def test_a_text_that_is_not_a_string_is_named() -> None:
    with pytest.raises(TypeError, match=r"texts\[1\] must be a string, got int"):
        discover_intents(["a", 2, "c"], vectors=np.eye(3))  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not one string"):
        discover_intents("abc", vectors=np.eye(3))


def test_neither_vectors_nor_encoder() -> None:
    with pytest.raises(TypeError, match=r"vectors=.*encoder="):
        discover_intents(["a"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("n_intents", 0, "n_intents must be an int >= 1"),
        ("n_intents", 7, "n_intents=7 but there are only 6 messages"),
        ("min_size", 0, "min_size must be an int >= 1"),
        ("outlier_threshold", -1.0, "outlier_threshold must be a positive number or None"),
        ("outlier_threshold", float("nan"), "outlier_threshold must be a positive number"),
        ("max_concurrency", 0, "max_concurrency must be an int >= 1"),
        ("sample_size", 2, "sample_size must be an int >= 10"),
        ("random_state", True, "random_state must be an int"),
    ],
)
def test_settings_out_of_range(option: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        discover_intents(list("abcdef"), vectors=np.eye(6), **{option: value})  # type: ignore[arg-type]


def test_known_classifier_of_another_dimension() -> None:
    known = IntentClassifier({"refund": [[1.0, 0.0, 0.0, 0.0]]}, threshold=0.5)
    with pytest.raises(ValueError, match=r"known was built from 4-dimensional vectors.*3 dim"):
        discover_intents(["a", "b"], vectors=np.eye(2, 3), known=known)


def test_a_known_classifier_that_accepts_nothing_is_suspected_of_another_model() -> None:
    vectors, _ = sphere_clusters(3, 10, dim=8, noise=0.1, seed=5)
    # Same size, unrelated directions: what a classifier of another model looks like.
    other = np.random.default_rng(9).normal(size=(2, 8))
    known = IntentClassifier({"a": [other[0].tolist()], "b": [other[1].tolist()]}, threshold=0.99)
    texts = [f"message {i}" for i in range(len(vectors))]
    with pytest.warns(UserWarning, match=r"known accepted none of the 30 messages.*another model"):
        found = discover_intents(texts, vectors=vectors, known=known)
    assert found.covered_by_known == 0


def test_known_classifier_without_threshold_rejects_nothing() -> None:
    known = IntentClassifier({"refund": [[1.0, 0.0]]})
    with pytest.raises(ValueError, match="known has no threshold"):
        discover_intents(["a"], vectors=[[1.0, 0.0]], known=known)


def test_timestamps_are_checked_before_anything_is_embedded() -> None:
    class Refusing:
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("must not be called")

    with pytest.raises(ValueError, match="got 1 timestamps for 2 texts"):
        discover_intents(["a", "b"], encoder=Refusing(), timestamps=["2024-01-01"])
    with pytest.raises(ValueError, match=r"timestamps\[1\] is not an ISO 8601"):
        discover_intents(["a", "b"], encoder=Refusing(), timestamps=["2024-01-01", "soon"])
    with pytest.raises(TypeError, match="namer must be"):
        discover_intents(["a"], encoder=Refusing(), namer=42)  # type: ignore[arg-type]


async def test_the_async_twin_takes_the_same_arguments_and_checks_them_first() -> None:
    class Refusing:
        async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("must not be called")

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("must not be called")

    assert inspect.signature(adiscover_intents) == inspect.signature(discover_intents)
    with pytest.raises(ValueError, match="min_size must be an int >= 1"):
        await adiscover_intents(["a"], encoder=Refusing(), min_size=0)
    with pytest.raises(ValueError, match="got 1 timestamps for 2 texts"):
        await adiscover_intents(["a", "b"], encoder=Refusing(), timestamps=["2024-01-01"])
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_intent'"):
        await adiscover_intents(["a"], encoder=Refusing(), n_intent=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="give vectors"):
        await adiscover_intents(["a"])


async def test_the_async_twin_gives_the_same_result_on_vectors() -> None:
    vectors, labels = sphere_clusters(3, 20)
    texts = words_for(labels)
    found = await adiscover_intents(texts, vectors=vectors, n_keywords=3, random_state=1)
    same = discover_intents(texts, vectors=vectors, n_keywords=3, random_state=1)
    assert found.labels.tolist() == same.labels.tolist()
    assert [intent.keywords for intent in found.intents] == [
        intent.keywords for intent in same.intents
    ]


def test_importing_needs_no_optional_package() -> None:
    code = (
        "import sys; import phospho_embed, phospho_embed.discovery, phospho_embed.encoders; "
        "from phospho_embed.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('sklearn', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_without_scikit_learn_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None; import numpy as np\n"
        "from phospho_embed.discovery import discover_intents\n"
        "try:\n"
        "    discover_intents(['a', 'b'], vectors=np.eye(2), min_size=1)\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "phospho-embed[analytics]" in result.stdout
    assert "sklearn" in result.stdout
