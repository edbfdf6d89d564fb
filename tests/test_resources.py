"""Clients and adapters release what they open: no ResourceWarning (unclosed sockets or
transports) from the usual ways of using them, checked in a fresh interpreter that turns
every warning on and collects garbage before it exits."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, threading, warnings
    warnings.simplefilter("always")
    from phospho_embed import AsyncPhosphoClient, PhosphoClient
    from phospho_embed.emulator import Emulator
    from langchain_phospho import PhosphoEmbeddings
    from llama_index_phospho import PhosphoEmbedding

    with Emulator().start() as emulator:
        url = emulator.base_url
        # Core clients: closed explicitly, and dropped without closing.
        with PhosphoClient(api_key="k", base_url=url) as client:
            client.embed_many(["a", "b", "c"])
        PhosphoClient(api_key="k", base_url=url).embed_many(["d", "e"])
        aclient = AsyncPhosphoClient(api_key="k", base_url=url)
        for i in range(3):  # a fresh event loop each time, as notebooks and scripts do
            asyncio.run(aclient.embed_many([f"f {i}", f"g {i}"]))
        # LangChain: sync and async, two loops, never closed by the user.
        lc = PhosphoEmbeddings(api_key="k", base_url=url)
        lc.embed_documents(["h", "i"])
        asyncio.run(lc.aembed_documents(["j"]))
        asyncio.run(lc.aembed_query("k"))
        # LlamaIndex: the same.
        li = PhosphoEmbedding(api_key="k", base_url=url)
        li.get_text_embedding_batch(["l", "m"])
        asyncio.run(li.aget_text_embedding_batch(["n"]))
        asyncio.run(li.aget_query_embedding("o"))
        # A loop in another thread, closed with no clean-up at all (no shutdown_asyncgens):
        # what LlamaIndex's asyncio_run does under a running loop, e.g. in a notebook.
        def bare_loop(coro):
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(coro)
            finally:
                loop.close()

        for coro in (aclient.embed_many(["p", "q"]), aclient.embed("r")):
            worker = threading.Thread(target=bare_loop, args=(coro,))
            worker.start()
            worker.join()

        async def notebook_cell():  # LlamaIndex's own sync-over-async path, for real
            li.get_agg_embedding_from_queries(["s", "t"])
            from llama_index.core.evaluation import SemanticSimilarityEvaluator
            SemanticSimilarityEvaluator(embed_model=li).evaluate(response="u", reference="v")

        asyncio.run(notebook_cell())
        del client, aclient, lc, li
        gc.collect()
    print("done")
    """
)


def test_no_resource_warnings() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "ResourceWarning" not in result.stderr, result.stderr
    assert "unclosed" not in result.stderr, result.stderr
