"""Discovery end to end: CLINC150 messages embedded over HTTP by the emulator, through a
core client and through both framework adapters, then found again.

The thresholds hold for the emulator's lexical and semantic vectors alike (measured on this
subset: NMI 0.73 and 0.96, coverage 100% and 99%).
"""

from __future__ import annotations

import numpy as np
import pytest

from langchain_phospho import PhosphoEmbeddings
from llama_index_phospho import PhosphoEmbedding
from phospho_embed import AsyncPhosphoClient, PhosphoClient
from phospho_embed.discovery import DiscoveryResult, adiscover_intents, discover_intents
from phospho_embed.emulator import Emulator
from tests.discovery.conftest import CLINC_INTENTS, PER_INTENT, TEST_KEY

Clinc = tuple[list[str], list[str]]


def check_clinc(found: DiscoveryResult, intents: list[str]) -> None:
    report = found.evaluate(intents)
    assert report.nmi > 0.65, report
    assert report.acc > 0.5, report
    assert report.coverage > 0.9, report
    assert len(CLINC_INTENTS) - 3 <= len(found.intents) <= 3 * len(CLINC_INTENTS)
    for intent in found.intents:
        assert intent.keywords
        assert intent.examples


@pytest.fixture(scope="module")
def with_client(phospho_emulator_server: Emulator, clinc: Clinc) -> DiscoveryResult:
    phospho_emulator_server.reset()
    with PhosphoClient(api_key=TEST_KEY, base_url=phospho_emulator_server.base_url) as client:
        found = discover_intents(clinc[0], encoder=client)
    found.encoder = None  # closed: assign() below must be given an encoder
    return found


def test_core_client_finds_the_intents(with_client: DiscoveryResult, clinc: Clinc) -> None:
    check_clinc(with_client, clinc[1])


def test_framework_adapters_find_the_same_intents(
    phospho_emulator: Emulator, with_client: DiscoveryResult, clinc: Clinc
) -> None:
    langchain = PhosphoEmbeddings(api_key=TEST_KEY, base_url=phospho_emulator.base_url)
    llama = PhosphoEmbedding(api_key=TEST_KEY, base_url=phospho_emulator.base_url)
    try:
        for encoder in (langchain, llama):
            found = discover_intents(clinc[0], encoder=encoder)
            # Same vectors, same clustering: the encoder is only how they arrive.
            assert (found.labels == with_client.labels).all()
            assert [i.name for i in found.intents] == [i.name for i in with_client.intents]
    finally:
        langchain.close()
        llama.close()


async def test_async_client_and_assigning_new_messages(
    phospho_emulator: Emulator, with_client: DiscoveryResult, clinc: Clinc
) -> None:
    async with AsyncPhosphoClient(api_key=TEST_KEY, base_url=phospho_emulator.base_url) as client:
        found = await adiscover_intents(clinc[0], encoder=client)
        assert (found.labels == with_client.labels).all()
        # A message of the data set lands where its twin did.
        first_of_each = [clinc[0][i * PER_INTENT] for i in range(len(CLINC_INTENTS))]
        expected = [found.labels[i * PER_INTENT] for i in range(len(CLINC_INTENTS))]
        assert (await found.aassign(first_of_each)).tolist() == expected
    with pytest.raises(TypeError, match="needs an encoder"):
        with_client.assign(first_of_each)
    with PhosphoClient(api_key=TEST_KEY, base_url=phospho_emulator.base_url) as sync_client:
        assert with_client.assign(first_of_each, encoder=sync_client).tolist() == expected
        classifier = with_client.to_classifier(client=sync_client)
        top = classifier.classify(clinc[0][0])
        assert top.intent == with_client.intents[int(with_client.labels[0])].name


def test_assign_refuses_vectors_of_another_model(with_client: DiscoveryResult) -> None:
    with pytest.raises(ValueError, match="3 dimensions, but the intents were discovered in"):
        with_client.assign(np.ones((2, 3)))
