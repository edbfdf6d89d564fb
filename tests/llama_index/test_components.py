"""The model inside real LlamaIndex components, end to end over HTTP against the emulator:
global ``Settings``, ``VectorStoreIndex`` (sync and ``use_async``), ``IngestionPipeline``
(worker processes and ``arun``), an evaluator, a selector and a router, the semantic
splitter, and Qdrant in its embedded on-disk mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.evaluation import SemanticSimilarityEvaluator
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SemanticSplitterNodeParser, SentenceSplitter
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.schema import MetadataMode, QueryBundle, TextNode
from llama_index.core.selectors import EmbeddingSingleSelector
from llama_index.core.tools import QueryEngineTool, ToolMetadata

from llama_index_phospho import PhosphoEmbedding
from phospho_embed.emulator import Emulator
from tests.llama_index.conftest import TEST_KEY, MakeModel, vec

# Three topics with no words in common, so the emulator's word-overlap vectors retrieve the
# right one for a query that shares its words.
DOCS = {
    "refunds": "Refunds are paid back to the original card within five business days.",
    "shipping": "Parcels ship from the warehouse and tracking numbers arrive by email.",
    "accounts": "Passwords reset through the login page link sent to your inbox.",
}
QUERIES = {
    "refunds": "when are refunds paid back to my card",
    "shipping": "where is the tracking number of my parcel",
    "accounts": "how do I reset my password on the login page",
}


def documents() -> list[Document]:
    return [
        Document(text=text, id_=topic, metadata={"topic": topic}) for topic, text in DOCS.items()
    ]


def assert_retrieves_each_topic(index: VectorStoreIndex) -> None:
    retriever = index.as_retriever(similarity_top_k=1)
    for topic, query in QUERIES.items():
        (hit,) = retriever.retrieve(query)
        assert hit.node.metadata["topic"] == topic, (query, hit.node.get_content())


def test_settings_embed_model_is_used_by_an_index(
    make_model: MakeModel, emulator: Emulator
) -> None:
    Settings.embed_model = make_model()
    Settings.llm = MockLLM()
    index = VectorStoreIndex.from_documents(documents())
    assert Settings.embed_model.class_name() == "PhosphoEmbedding"
    assert_retrieves_each_topic(index)
    # Three documents (each one chunk) and three queries, each requested once.
    assert emulator.stats.requests == 6
    assert all(count == 1 for count in emulator.stats.inputs.values())


@pytest.mark.parametrize("use_async", [False, True])
def test_vector_store_index_from_documents(
    make_model: MakeModel, emulator: Emulator, use_async: bool
) -> None:
    emulator.configure(latency=0.02)
    model = make_model(max_concurrency=3, embed_batch_size=2)
    extra = [Document(text=f"Filler note number {i} about gardening tools.") for i in range(10)]
    index = VectorStoreIndex.from_documents(
        documents() + extra, embed_model=model, use_async=use_async
    )
    assert emulator.stats.peak_in_flight <= 3
    assert_retrieves_each_topic(index)
    # Each stored vector is the emulator's vector of the text LlamaIndex embedded for it.
    nodes = list(index.docstore.docs.values())
    assert len(nodes) == 13
    for node in nodes:
        embedded = node.get_content(metadata_mode=MetadataMode.EMBED)
        assert index.vector_store.get(node.node_id) == vec(embedded)  # type: ignore[attr-defined]


async def test_index_async_retrieval(make_model: MakeModel) -> None:
    model = make_model()
    index = VectorStoreIndex.from_documents(documents(), embed_model=model, use_async=True)
    retriever = index.as_retriever(similarity_top_k=1)
    for topic, query in QUERIES.items():
        (hit,) = await retriever.aretrieve(query)
        assert hit.node.metadata["topic"] == topic
    await model.aclose()


def test_ingestion_pipeline_in_worker_processes_with_an_explicit_key(
    make_model: MakeModel, emulator: Emulator
) -> None:
    # The key is given explicitly and is NOT in the environment (autouse fixture), and the
    # emulator demands it: worker processes only succeed if the pickled model carries it.
    emulator.configure(api_key=TEST_KEY)
    model = make_model()
    # Split up front: a SentenceSplitter inside a multi-worker pipeline hangs
    # llama-index-core 0.14.25's process pool, whatever the embedder.
    nodes = SentenceSplitter(chunk_size=64, chunk_overlap=0).get_nodes_from_documents(documents())
    pipeline = IngestionPipeline(transformations=[model], disable_cache=True)
    result = pipeline.run(nodes=nodes, num_workers=2)
    assert sorted(node.get_content() for node in result) == sorted(DOCS.values())
    for node in result:
        assert node.embedding == vec(node.get_content(metadata_mode=MetadataMode.EMBED))
    assert emulator.stats.by_status == {200: 3}


async def test_ingestion_pipeline_arun(make_model: MakeModel, emulator: Emulator) -> None:
    emulator.configure(latency=0.02)
    model = make_model(max_concurrency=2)
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), model]
    )
    result = await pipeline.arun(documents=documents())
    assert sorted(node.get_content() for node in result) == sorted(DOCS.values())
    for node in result:
        assert node.embedding == vec(node.get_content(metadata_mode=MetadataMode.EMBED))
    assert emulator.stats.peak_in_flight <= 2
    await model.aclose()


def test_semantic_similarity_evaluator_twice(make_model: MakeModel, emulator: Emulator) -> None:
    evaluator = SemanticSimilarityEvaluator(embed_model=make_model(), similarity_threshold=0.5)

    def evaluate_twice() -> None:
        close = evaluator.evaluate(
            response="refunds are paid back to your card", reference=DOCS["refunds"]
        )
        far = evaluator.evaluate(response="the weather is sunny", reference=DOCS["refunds"])
        assert close.passing is True
        assert far.passing is False
        assert close.score is not None
        assert far.score is not None
        assert close.score > far.score

    # From plain code, evaluate() drives aevaluate() on the thread's default event loop.
    evaluate_twice()

    async def notebook_cell() -> None:
        # Under a running loop (a notebook), LlamaIndex's asyncio_run gives each evaluate()
        # a brand-new loop in a worker thread, closed right after.
        evaluate_twice()

    asyncio.run(notebook_cell())
    assert asyncio.run(
        evaluator.aevaluate(response=DOCS["shipping"], reference=DOCS["shipping"])
    ).score == pytest.approx(1.0)
    assert emulator.stats.by_status == {200: 10}  # two single-text calls per evaluation


def tools() -> list[QueryEngineTool]:
    llm = MockLLM()
    built = []
    for topic, text in DOCS.items():
        index = VectorStoreIndex([TextNode(text=text)], embed_model=Settings.embed_model)
        built.append(
            QueryEngineTool(
                query_engine=index.as_query_engine(llm=llm),
                metadata=ToolMetadata(name=topic, description=text),
            )
        )
    return built


def test_embedding_single_selector_picks_the_right_tool(make_model: MakeModel) -> None:
    selector = EmbeddingSingleSelector.from_defaults(embed_model=make_model())
    choices = [ToolMetadata(name=topic, description=text) for topic, text in DOCS.items()]
    for position, query in enumerate(QUERIES.values()):
        result = selector.select(choices, QueryBundle(query))
        assert result.ind == position
        assert asyncio.run(selector.aselect(choices, QueryBundle(query))).ind == position


def test_router_query_engine_routes_with_a_mock_llm(make_model: MakeModel) -> None:
    Settings.embed_model = make_model()
    router = RouterQueryEngine(
        selector=EmbeddingSingleSelector.from_defaults(),
        query_engine_tools=tools(),
        llm=MockLLM(),
    )
    response = router.query(QUERIES["shipping"])
    # MockLLM echoes its prompt, which holds the context the routed engine retrieved.
    assert DOCS["shipping"] in str(response)
    assert DOCS["refunds"] not in str(response)
    assert response.metadata is not None
    assert "shipping" in response.metadata["selector_result"].reason


def test_semantic_splitter_splits_at_the_change_of_topic(
    make_model: MakeModel, emulator: Emulator
) -> None:
    model = make_model()
    parser = SemanticSplitterNodeParser.from_defaults(
        embed_model=model, buffer_size=1, breakpoint_percentile_threshold=50
    )
    text = (
        "Refunds are paid back to the card. Refunds to the card take five days. "
        "Refunds paid to a card show as credits. "
        "Parcels ship from the warehouse. Parcels ship with a tracking number. "
        "Tracking numbers for parcels arrive by email."
    )
    nodes = parser.get_nodes_from_documents([Document(text=text)])
    contents = [node.get_content() for node in nodes]
    assert len(contents) >= 2
    assert "Refunds" in contents[0]
    assert "Parcels" not in contents[0]
    assert "Parcels" in contents[-1]
    assert "Refunds" not in contents[-1]
    assert emulator.stats.requests >= 6  # one sentence group per sentence
    # The parser serializes its embed model: the key must stay out of that too.
    assert "api_key" not in repr(parser.to_dict())
    assert TEST_KEY not in parser.to_json()


# Local Qdrant ignores the payload index the store asks for, and says so; nothing to fix here.
@pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
def test_qdrant_on_disk_index_reopens_and_retrieves(make_model: MakeModel, tmp_path: Path) -> None:
    qdrant_client = pytest.importorskip("qdrant_client")
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    path = str(tmp_path / "qdrant")
    client = qdrant_client.QdrantClient(path=path)
    store = QdrantVectorStore(client=client, collection_name="intents")
    VectorStoreIndex.from_documents(
        documents(),
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=make_model(),
    )
    client.close()

    # A new process would do exactly this: open the directory, wrap it, query it.
    reopened = qdrant_client.QdrantClient(path=path)
    try:
        store = QdrantVectorStore(client=reopened, collection_name="intents")
        index = VectorStoreIndex.from_vector_store(store, embed_model=make_model())
        assert_retrieves_each_topic(index)
    finally:
        reopened.close()


def test_the_namespace_class_works_inside_components(make_model: MakeModel) -> None:
    from llama_index.embeddings.phospho import PhosphoEmbedding as FromNamespace

    model = FromNamespace(api_key=TEST_KEY, base_url=make_model().base_url)
    assert isinstance(model, PhosphoEmbedding)
    index = VectorStoreIndex.from_documents(documents(), embed_model=model)
    assert_retrieves_each_topic(index)
    model.close()
