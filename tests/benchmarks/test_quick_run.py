"""The benchmark suite's quick mode runs end to end, so the suite cannot rot unnoticed."""

from __future__ import annotations

from pathlib import Path

from benchmarks.__main__ import main


def test_quick_benchmarks_write_a_page(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    assert main(["--quick", "--output", str(output)]) == 0
    page = output.read_text()
    assert page.startswith("# Benchmarks")
    assert "in --quick mode" in page
    # The goals are reported (met or not), never asserted here.
    assert "## Goals" in page
    assert "at most 1.3x the CPU per request" in page

    assert "## Latency-bound throughput" in page
    for entry in (
        "`PhosphoClient.embed_many`",
        "`AsyncPhosphoClient.embed_many`",
        "`PhosphoEmbeddings.embed_documents`",
        "`PhosphoEmbeddings.aembed_documents`",
        "`PhosphoEmbedding.get_text_embedding_batch`",
        "`PhosphoEmbedding.aget_text_embedding_batch`",
        "LangChain `OpenAIEmbeddings.embed_documents`",
        "LangChain `OpenAIEmbeddings.aembed_documents`",
        "LlamaIndex `OpenAIEmbedding.get_text_embedding_batch`",
        "LlamaIndex `OpenAIEmbedding.aget_text_embedding_batch`",
        "plain loop of `httpx` posts",
    ):
        assert entry in page, entry
    assert "Ours against each alternative" in page
    # The plot is written next to the page and linked from it.
    assert "](benchmarks-throughput.png)" in page
    assert (tmp_path / "benchmarks-throughput.png").read_bytes().startswith(b"\x89PNG")

    assert "## Client overhead" in page
    assert "bare `httpx.Client.post` + `json.loads`, one at a time | " in page
    assert "ours (`phospho_embed`)" in page  # the profile's breakdown

    assert "## Scaling with N" in page
    assert "peak / in memory" in page

    assert "## Throttling" in page
    assert "throttled (429)" in page
    assert "concurrency_limit at the end" in page

    assert "## Intent classification on CLINC150" in page
    assert "| **ours**: top-5 mean" in page
    assert "semantic-router method" in page
    assert "not phospho's intent model" in page  # the caveat travels with the numbers
