"""What the intent tools learn from an encoder through public attributes only: its model
and, for a core client, the dimension of its vectors."""

from __future__ import annotations

from types import SimpleNamespace

from pydantic import SecretStr

from langchain_phospho import PhosphoEmbeddings
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import PhosphoClient
from phospho_embed.emulator import Emulator
from phospho_embed.encoders import encoder_dimension, encoder_model


def test_the_model_comes_from_public_attributes() -> None:
    with PhosphoClient(api_key="k", model="client-model") as client:
        assert encoder_model(client) == "client-model"  # its options.model
    langchain = PhosphoEmbeddings(api_key=SecretStr("k"), model="langchain-model")
    llama = PhosphoEmbedding(api_key=SecretStr("k"), model_name="llama-model")
    assert encoder_model(langchain) == "langchain-model"
    assert encoder_model(llama) == "llama-model"
    langchain.close()
    llama.close()
    assert encoder_model(SimpleNamespace(options=SimpleNamespace(model="m"), model="x")) == "m"
    assert encoder_model(SimpleNamespace(embed_documents=print)) is None
    assert encoder_model(None) is None


def test_a_core_client_knows_its_dimension_after_its_first_vector(
    phospho_emulator: Emulator,
) -> None:
    phospho_emulator.configure(dimensions=64)
    with PhosphoClient(api_key="k", base_url=phospho_emulator.base_url) as client:
        assert encoder_dimension(client) is None
        client.embed("hello")
        assert encoder_dimension(client) == 64
    assert encoder_dimension(SimpleNamespace(dimension=64)) is None  # not a core client
