"""LangChain's own standard test suites for embeddings (langchain-tests, pinned exactly)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_phospho import PhosphoEmbeddings
from phospho_embed.emulator import Emulator


class TestPhosphoEmbeddingsUnit(EmbeddingsUnitTests):
    """Construction, and construction from the PHOSPHO_* environment variables."""

    @property
    def embeddings_class(self) -> type[PhosphoEmbeddings]:
        return PhosphoEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"api_key": "test-key", "max_concurrency": 4}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "PHOSPHO_API_KEY": "key-from-env",
                "PHOSPHO_BASE_URL": "http://127.0.0.1:8000/v2",
                "PHOSPHO_PROJECT_ID": "project-from-env",
            },
            {},
            {
                "api_key": "key-from-env",
                "base_url": "http://127.0.0.1:8000/v2",
                "project_id": "project-from-env",
            },
        )


class TestPhosphoEmbeddingsIntegration(EmbeddingsIntegrationTests):
    """Embedding through the emulator, sync and async."""

    @pytest.fixture(autouse=True)
    def _emulator(self, phospho_emulator: Emulator) -> None:
        self.base_url = phospho_emulator.base_url

    @property
    def embeddings_class(self) -> type[PhosphoEmbeddings]:
        return PhosphoEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"api_key": "test-key", "base_url": self.base_url}
