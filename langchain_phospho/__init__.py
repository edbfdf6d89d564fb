"""LangChain integration for phospho intent embeddings.

from langchain_phospho import PhosphoEmbeddings

embeddings = PhosphoEmbeddings()  # PHOSPHO_API_KEY from the environment
"""

from langchain_phospho.embeddings import PhosphoEmbeddings
from phospho_embed._version import __version__

__all__ = ["PhosphoEmbeddings", "__version__"]
