"""LangChain integration for phospho intent embeddings.

from langchain_phospho import PhosphoEmbeddings, PhosphoIntentRouter

embeddings = PhosphoEmbeddings()  # PHOSPHO_API_KEY from the environment
"""

from langchain_phospho.embeddings import PhosphoEmbeddings
from langchain_phospho.router import PhosphoIntentRouter
from phospho_embed._version import __version__

__all__ = ["PhosphoEmbeddings", "PhosphoIntentRouter", "__version__"]
