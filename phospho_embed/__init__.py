"""phospho-embed: the shared core that talks to phospho's intent-embed API.

One request per text, many in flight, in order, retried and bounded:

```python
from phospho_embed import PhosphoClient

with PhosphoClient() as client:          # PHOSPHO_API_KEY from the environment
    vectors = client.embed_many(["cancel my order", "where is my parcel?"])
```

`AsyncPhosphoClient` is the asyncio twin; both take their settings as keywords or as one
`ClientOptions`. Errors are in `phospho_embed.errors` (and
re-exported here); the pure protocol rules are in `phospho_embed.wire`; a local stand-in
of the API is in `phospho_embed.emulator`.
"""

from phospho_embed import errors
from phospho_embed._async_client import AsyncPhosphoClient
from phospho_embed._batch import BatchResults, ProgressCallback, ResultCallback
from phospho_embed._client import PhosphoClient
from phospho_embed._core import Usage
from phospho_embed._options import ClientOptions
from phospho_embed._version import __version__
from phospho_embed.errors import *  # noqa: F403  (every error, listed in errors.__all__)
from phospho_embed.wire import RetryPolicy

__all__ = [
    "AsyncPhosphoClient",
    "BatchResults",
    "ClientOptions",
    "PhosphoClient",
    "ProgressCallback",
    "ResultCallback",
    "RetryPolicy",
    "Usage",
    "__version__",
    *errors.__all__,
]
