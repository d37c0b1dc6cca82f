"""What a process needs to run graphs: settings, database, registry, outbound HTTP client,
and the hub that streams its runs' updates."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from socialflow.core.credentials import key_wrapper
from socialflow.core.crypto import LocalKeyWrapper
from socialflow.core.db import Database
from socialflow.core.settings import Settings, get_settings
from socialflow.nodes import NodeRegistry, default_registry
from socialflow.orchestration._events import ExecutionEvents

if TYPE_CHECKING:
    from socialflow.knowledge import StoreCache

__all__ = ["EngineRuntime", "get_runtime", "set_runtime"]


@dataclass
class EngineRuntime:
    """The process-wide pieces every run shares."""

    settings: Settings
    db: Database
    registry: NodeRegistry
    events: ExecutionEvents = field(default_factory=ExecutionEvents)
    #: executions whose cancellation was asked for; their runs end as cancelled, not failed
    cancel_requested: set[uuid.UUID] = field(default_factory=set)
    #: executions another worker re-claimed while this process still ran them (a lapsed
    #: lease): their runs stop without writing anything, the new owner records the run
    lease_lost: set[uuid.UUID] = field(default_factory=set)
    _http: dict[int, httpx.AsyncClient] = field(default_factory=dict, repr=False)
    _keys: LocalKeyWrapper | None = field(default=None, repr=False)
    _stores: StoreCache | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, registry: NodeRegistry | None = None
    ) -> EngineRuntime:
        """A runtime for ``settings``, with the default registry unless one is given."""
        db = Database(
            settings.database_url,
            echo=settings.database.echo,
            pool_size=settings.database.pool_size,
        )
        return cls(settings=settings, db=db, registry=registry or default_registry())

    def key_wrapper(self) -> LocalKeyWrapper:
        """The master keys, parsed once per process rather than once per run."""
        if self._keys is None:
            self._keys = key_wrapper(self.settings)
        return self._keys

    def http_client(self) -> httpx.AsyncClient:
        """The outbound client for the running event loop (clients cannot cross loops)."""
        key = id(asyncio.get_running_loop())
        client = self._http.get(key)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                follow_redirects=False,
                headers={"User-Agent": "Socialflow"},
                timeout=httpx.Timeout(15.0),
                trust_env=False,
            )
            self._http[key] = client
        return client

    def knowledge_stores(self) -> StoreCache:
        """Knowledge-base stores kept open for this process's runs (vectors stay loaded)."""
        if self._stores is None:
            from socialflow.knowledge import StoreCache

            self._stores = StoreCache()
        return self._stores

    async def aclose(self) -> None:
        """Close the HTTP clients, the knowledge stores and the database pool."""
        if self._stores is not None:
            self._stores.close()
        for client in self._http.values():
            await client.aclose()
        self._http.clear()
        await self.db.dispose()


_runtime: EngineRuntime | None = None


def get_runtime() -> EngineRuntime:
    """This process's runtime, built from the environment's settings on first use."""
    global _runtime
    if _runtime is None:
        _runtime = EngineRuntime.from_settings(get_settings())
    return _runtime


def set_runtime(runtime: EngineRuntime | None) -> None:
    """Install the runtime this process's runs use (workers, the API, tests)."""
    global _runtime
    _runtime = runtime
