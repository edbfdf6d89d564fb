"""Embed a corpus on a Dask cluster: one bound on requests in flight for the whole cluster,
resumable parquet output, nothing lost when a worker dies.

```python
import dask.dataframe as dd
from phospho_embed.dask import embed_frame, embed_to_parquet

ddf = dd.read_parquet("messages/")
out = embed_frame(ddf, column="text", max_concurrency=64)   # lazy: adds "embedding", "error"
summary = embed_to_parquet(ddf, "embedded/", column="text", max_concurrency=64)  # resumable
```

``max_concurrency`` bounds the requests in flight across every worker and thread (a
``distributed.Semaphore`` whose leases each worker process takes in turns while it has texts
queued). Each worker builds its connection pools once, from settings that travel without the key
showing anywhere (`WorkerSettings`). A text that fails after its retries gets a null
embedding and an ``error``; the partition goes on. Needs the ``dask`` extra:
``pip install 'phospho-embed[dask]'``.
"""

try:
    import dask.dataframe  # noqa: F401
    import distributed  # noqa: F401
    import pyarrow  # type: ignore[import-untyped]  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"phospho_embed.dask needs dask[dataframe], distributed and pyarrow ({error.name} is "
        "missing): pip install 'phospho-embed[dask]'"
    ) from error

from phospho_embed.dask._api import (
    EmbedSummary,
    PartitionReport,
    embed_bag,
    embed_frame,
    embed_to_parquet,
)
from phospho_embed.dask._settings import HiddenKey, WorkerSettings

__all__ = [
    "EmbedSummary",
    "HiddenKey",
    "PartitionReport",
    "WorkerSettings",
    "embed_bag",
    "embed_frame",
    "embed_to_parquet",
]
