"""What both framework adapters need from the core, written once: their live clients.

An adapter (LangChain's ``PhosphoEmbeddings``, LlamaIndex's ``PhosphoEmbedding``) is a
pydantic model whose fields are settings. `Clients` turns those fields into clients at first
use and again whenever they change, so configuration is never silently ignored: assigning
``emb.max_concurrency = 4``, ``model_copy(update=...)``, ``copy.copy`` and
``copy.deepcopy`` all end up with clients built from the fields as they are. A copy or an
unpickled model builds its own clients; closing one leaves it usable.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar, cast

import httpx

from phospho_embed._async_client import AsyncPhosphoClient
from phospho_embed._client import PhosphoClient
from phospho_embed._core import ClientCore, Usage
from phospho_embed._options import ClientOptions

#: What a client was built from: the options and the injected httpx client, if any.
_Key = tuple[ClientOptions, httpx.Client | httpx.AsyncClient | None]
_Client = TypeVar("_Client", PhosphoClient, AsyncPhosphoClient)
_Entry = tuple[_Key, PhosphoClient | AsyncPhosphoClient]


class Clients:
    """The sync and the async client of one adapter, built from its current options.

    Thread-safe. Pickles, copies and deep-copies as an empty holder: live clients hold
    sockets, threads and locks that belong to this process and this object.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[type, _Entry] = {}  # by client class
        # The counters of the clients already replaced or closed (a call may still be running
        # on one), so that usage counts every request and never goes back.
        self._retired: list[ClientCore] = []

    def __reduce__(self) -> tuple[type[Clients], tuple[()]]:
        return (Clients, ())

    def __copy__(self) -> Clients:
        return Clients()

    def __deepcopy__(self, memo: dict[int, Any]) -> Clients:
        return Clients()

    def sync(self, options: ClientOptions, http_client: httpx.Client | None) -> PhosphoClient:
        """The sync client for ``options``, rebuilt when they (or ``http_client``) changed."""
        return self._get(PhosphoClient, options, http_client)

    def async_(
        self, options: ClientOptions, http_client: httpx.AsyncClient | None
    ) -> AsyncPhosphoClient:
        """The async client for ``options``; it serves every event loop (see
        `AsyncPhosphoClient`)."""
        return self._get(AsyncPhosphoClient, options, http_client)

    def _get(self, kind: type[_Client], options: ClientOptions, http_client: Any) -> _Client:
        key = (options, http_client)
        with self._lock:
            entry = self._live.get(kind)
            if entry is None or not _same(entry[0], key):
                self._retire(entry)
                entry = self._live[kind] = (key, kind(options, http_client=http_client))
            return cast(_Client, entry[1])

    @property
    def usage(self) -> Usage:
        """Requests, retries and tokens of every client this holder has had."""
        with self._lock:
            total = Usage()
            for core in self._retired:
                total += core.usage
            for _, client in self._live.values():
                total += client.usage
            return total

    def close(self) -> None:
        """Close the sync client; the next call builds a new one. The async client's pools
        belong to event loops: they close with their loops, or with `aclose`."""
        sync = self._take(PhosphoClient)
        if isinstance(sync, PhosphoClient):
            sync.close()

    async def aclose(self) -> None:
        """Close both clients; the next call builds new ones."""
        self.close()
        aio = self._take(AsyncPhosphoClient)
        if isinstance(aio, AsyncPhosphoClient):
            await aio.aclose()

    def _take(self, kind: type) -> PhosphoClient | AsyncPhosphoClient | None:
        """Forget the live client of class ``kind`` (its usage is kept) and return it."""
        with self._lock:
            entry = self._live.pop(kind, None)
            self._retire(entry)
        return None if entry is None else entry[1]

    def _retire(self, entry: _Entry | None) -> None:
        # Not closed here: another thread may still be using it. Its pools close when it
        # is garbage collected (or with its event loop).
        if entry is not None:
            self._retired.append(entry[1]._core)


def _same(built: _Key, wanted: _Key) -> bool:
    # The injected client by identity: two httpx clients are never "equal".
    return built[0] == wanted[0] and built[1] is wanted[1]


class OwnsClients:
    """A mixin for pydantic adapters holding a `Clients` in the private attribute
    ``_clients``: a copy gets its own, and injected httpx clients are shared, not copied."""

    _clients: Clients

    def __copy__(self) -> Any:
        # pydantic copies private attributes by reference: the copy would share the clients
        # (and rebuild them under the original whenever their settings differ).
        copied = super().__copy__()  # type: ignore[misc]
        copied._clients = Clients()
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        for value in vars(self).values():
            if isinstance(value, (httpx.Client, httpx.AsyncClient)):
                memo[id(value)] = value  # the caller's to own and close: shared
        return super().__deepcopy__(memo)  # type: ignore[misc]
