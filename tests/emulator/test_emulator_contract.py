"""The wire contract of phospho-api.md, checked over real HTTP against the running emulator."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from phospho_embed.emulator import TOKEN_LIMIT, Emulator, count_tokens, emulator_vector

Embed = Callable[..., httpx.Response]
AUTH = {"Authorization": "Bearer test-key"}
TEXT = "I want to cancel my order"


def test_success_body_has_exactly_the_documented_shape(embed: Embed) -> None:
    response = embed(TEXT)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    tokens = count_tokens(TEXT)
    assert response.json() == {
        "object": "list",
        "data": [{"object": "embedding", "embedding": emulator_vector(TEXT), "index": 0}],
        "model": "intent-embed",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    assert len(response.json()["data"][0]["embedding"]) == 1536


def test_v0_serves_the_same_endpoint(phospho_emulator: Emulator, embed: Embed) -> None:
    v0 = httpx.post(
        f"{phospho_emulator.url}/v0/embeddings",
        json={"input": TEXT, "model": "intent-embed"},
        headers=AUTH,
    )

    assert v0.status_code == 200
    assert v0.json() == embed(TEXT).json()


def test_a_list_of_exactly_one_string_is_accepted(embed: Embed) -> None:
    response = embed([TEXT])

    assert response.status_code == 200
    assert response.json()["data"][0]["embedding"] == emulator_vector(TEXT)


def test_unknown_fields_are_ignored(embed: Embed) -> None:
    response = embed(TEXT, encoding_format="base64", dimensions=3, user="someone")

    assert response.status_code == 200
    assert response.json()["data"][0]["embedding"] == emulator_vector(TEXT)


def test_project_id_is_accepted(embed: Embed) -> None:
    assert embed(TEXT, project_id="my-project").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token abc"},
        {"Authorization": "Bearer"},
    ],
    ids=["no-header", "basic", "other-scheme", "bearer-without-token"],
)
def test_missing_or_non_bearer_authorization_is_403(
    phospho_emulator: Emulator, headers: dict[str, str]
) -> None:
    response = httpx.post(
        f"{phospho_emulator.base_url}/embeddings",
        json={"input": TEXT, "model": "intent-embed"},
        headers=headers,
    )

    assert response.status_code == 403
    assert response.json() == {"detail": "Not authenticated"}


def test_a_wrong_key_is_401_and_the_right_key_passes(
    phospho_emulator: Emulator, embed: Embed, client: httpx.Client
) -> None:
    phospho_emulator.configure(api_key="the-right-key")

    wrong = embed(TEXT)
    right = client.post(
        "/embeddings",
        json={"input": TEXT, "model": "intent-embed"},
        headers={"Authorization": "Bearer the-right-key"},
    )

    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "Invalid token"}
    assert right.status_code == 200


def test_any_bearer_token_passes_without_a_configured_key(client: httpx.Client) -> None:
    for token in ("a", "something-else"):
        response = client.post(
            "/embeddings",
            json={"input": TEXT, "model": "intent-embed"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200


def test_authentication_is_checked_before_the_body(
    phospho_emulator: Emulator, client: httpx.Client
) -> None:
    bad_body = {"input": 5, "model": "other-model"}
    anonymous = httpx.post(f"{phospho_emulator.base_url}/embeddings", json=bad_body)
    phospho_emulator.configure(api_key="the-right-key")
    wrong_key = client.post("/embeddings", json=bad_body)

    assert anonymous.status_code == 403
    assert wrong_key.status_code == 401


def test_billing_required_is_402_with_a_string_detail(
    phospho_emulator: Emulator, embed: Embed
) -> None:
    phospho_emulator.configure(billing_required=True)

    response = embed(TEXT)

    assert response.status_code == 402
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert "payment method" in detail


@pytest.mark.parametrize("texts", [["a", "b"], ["a", "b", "c"], []])
def test_a_list_of_other_than_one_string_is_400(embed: Embed, texts: list[str]) -> None:
    response = embed(texts)

    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)


def test_input_over_the_token_limit_is_400_naming_count_and_limit(embed: Embed) -> None:
    too_long = "word " * (TOKEN_LIMIT + 1)

    response = embed(too_long)

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert str(TOKEN_LIMIT + 1) in detail
    assert str(TOKEN_LIMIT) in detail.replace(str(TOKEN_LIMIT + 1), "")


def test_input_at_the_token_limit_is_accepted_and_billed(embed: Embed) -> None:
    response = embed("word " * TOKEN_LIMIT)

    assert response.status_code == 200
    assert response.json()["usage"] == {"prompt_tokens": TOKEN_LIMIT, "total_tokens": TOKEN_LIMIT}


def test_wrong_model_is_422_with_pydantic_error_list(embed: Embed) -> None:
    response = embed(TEXT, model="text-embedding-3-small")

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert len(detail) == 1
    assert {"type", "loc", "msg"} <= detail[0].keys()
    assert detail[0]["loc"] == ["body", "model"]


def test_missing_model_is_422(client: httpx.Client) -> None:
    response = client.post("/embeddings", json={"input": TEXT})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "model"]


@pytest.mark.parametrize("value", [5, None, True, {"text": "a"}, [1], [["a"]]])
def test_non_string_input_is_422(embed: Embed, value: object) -> None:
    response = embed(value)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert all(error["loc"][:2] == ["body", "input"] for error in detail)


def test_invalid_json_is_422(client: httpx.Client) -> None:
    response = client.post(
        "/embeddings",
        content=b'{"input": "unterminated',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail[0]["type"] == "json_invalid"


def test_a_body_that_is_not_an_object_is_422(client: httpx.Client) -> None:
    response = client.post("/embeddings", json=[TEXT])

    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_the_dimensions_knob_sets_the_vector_length(
    phospho_emulator: Emulator, embed: Embed
) -> None:
    phospho_emulator.configure(dimensions=64)

    embedding = embed(TEXT).json()["data"][0]["embedding"]

    assert embedding == emulator_vector(TEXT, 64)
    assert len(embedding) == 64
