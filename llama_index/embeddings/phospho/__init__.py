"""phospho intent embeddings under the import path LlamaIndex users expect::

    from llama_index.embeddings.phospho import PhosphoEmbedding

``llama_index`` and ``llama_index.embeddings`` are namespace packages (no ``__init__.py``),
so this directory merges with llama-index-core's instead of shadowing it. The class is the
one defined in `llama_index_phospho`, not a copy: ``isinstance`` and pickles agree.
"""

from llama_index_phospho import PhosphoEmbedding

__all__ = ["PhosphoEmbedding"]
