"""LlamaIndex integration for phospho intent embeddings.

    from llama_index_phospho import PhosphoEmbedding, PhosphoIntentSelector

    embed_model = PhosphoEmbedding()  # PHOSPHO_API_KEY from the environment

The same class is importable as ``llama_index.embeddings.phospho.PhosphoEmbedding``.
"""

from llama_index_phospho.embeddings import PhosphoEmbedding
from llama_index_phospho.selector import PhosphoIntentSelector
from phospho_embed._version import __version__

__all__ = ["PhosphoEmbedding", "PhosphoIntentSelector", "__version__"]
