"""LlamaIndex integration for phospho intent embeddings (the adapter arrives with its issue)."""
