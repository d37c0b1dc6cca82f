"""HTTP transports whose every TCP connection goes through the address guard, for the clients
of SDKs that call a URL a user set: httpx (the Ollama client) and httpx2 (the OpenAI and
Anthropic SDKs, which refuse httpx objects).

The check sits in the network backend, where the connection is opened: the host is resolved,
every address it resolves to is checked against the policy, and the socket is opened to a
checked address. So redirects and retries are guarded like the first request, a name cannot
resolve to one address for the check and another for the connection, and TLS still sends and
verifies the host name (the request URL is never rewritten). No proxy is used: a proxy would
resolve the target itself, out of the guard's sight.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import httpcore
import httpcore2
import httpx
import httpx2

from socialflow.core.errors import UserError

if TYPE_CHECKING:
    from socialflow.core.netguard import AddressPolicy

__all__ = ["Library", "shared_transports", "shared_transports2"]

Library = Literal["httpx", "httpx2"]
_MODULES: dict[str, tuple[ModuleType, ModuleType]] = {
    "httpx": (httpx, httpcore),
    "httpx2": (httpx2, httpcore2),
}
_MAX_CONNECTIONS = 100
_MAX_KEEPALIVE = 20
_KEEPALIVE_SECONDS = 5.0
_UNIX = "unix sockets are not reachable through the address guard"


def _unresolvable(core: ModuleType, exc: UserError) -> Exception:
    # a name that does not resolve is a connection failure like any other (retried upstream)
    error: Exception = core.ConnectError(exc.message)
    return error


class _AsyncBackend:
    """An async network backend of ``core`` (httpcore or httpcore2) that checks, then connects."""

    def __init__(self, policy: AddressPolicy, core: ModuleType) -> None:
        self._policy = policy
        self._core = core
        self._inner = core.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        try:
            addresses = await asyncio.wait_for(self._policy.addresses(host, port), timeout)
        except TimeoutError as exc:
            msg = f"resolving {host!r} timed out"
            raise self._core.ConnectTimeout(msg) from exc
        except UserError as exc:
            if exc.code != "host_unresolvable":
                raise
            raise _unresolvable(self._core, exc) from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (self._core.ConnectError, self._core.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses() never answers an empty list
        raise failure

    async def connect_unix_socket(self, path: str, *args: Any, **kwargs: Any) -> Any:
        raise UserError(_UNIX, code="address_forbidden", details={"host": path})

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _SyncBackend:
    """A sync network backend of ``core`` (httpcore or httpcore2) that checks, then connects."""

    def __init__(self, policy: AddressPolicy, core: ModuleType) -> None:
        self._policy = policy
        self._core = core
        self._inner = core.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        try:
            addresses = self._policy.addresses_sync(host, port)
        except UserError as exc:
            if exc.code != "host_unresolvable":
                raise
            raise _unresolvable(self._core, exc) from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (self._core.ConnectError, self._core.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(self, path: str, *args: Any, **kwargs: Any) -> Any:
        raise UserError(_UNIX, code="address_forbidden", details={"host": path})

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _pooled(library: Library, policy: AddressPolicy, *, sync: bool, context: Any) -> Any:
    """The library's own HTTP transport, its connection pool rebuilt on a guarded backend."""
    http, core = _MODULES[library]
    limits = http.Limits(
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_KEEPALIVE,
        keepalive_expiry=_KEEPALIVE_SECONDS,
    )
    kind = http.HTTPTransport if sync else http.AsyncHTTPTransport
    transport = kind(verify=context, trust_env=False, limits=limits)
    # neither library's transport takes a network backend: the pool it built is replaced
    pool = core.ConnectionPool if sync else core.AsyncConnectionPool
    backend = _SyncBackend(policy, core) if sync else _AsyncBackend(policy, core)
    transport._pool = pool(
        ssl_context=context,
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_KEEPALIVE,
        keepalive_expiry=_KEEPALIVE_SECONDS,
        network_backend=backend,
    )
    return transport


@cache
def _classes(library: Library) -> tuple[type[Any], type[Any]]:
    """The guarded sync and async transport classes, subclasses of the library's bases."""
    http, _core = _MODULES[library]

    class GuardedTransport(http.BaseTransport):  # type: ignore[misc,name-defined]
        """A sync transport connecting only to addresses the policy allows."""

        def __init__(self, policy: AddressPolicy, *, shared: bool) -> None:
            self._shared = shared
            context = http.create_ssl_context(trust_env=False)
            self._inner = _pooled(library, policy, sync=True, context=context)

        def handle_request(self, request: Any) -> Any:
            return self._inner.handle_request(request)

        def close(self) -> None:
            if not self._shared:  # a shared one serves other clients
                self._inner.close()

    class GuardedAsyncTransport(http.AsyncBaseTransport):  # type: ignore[misc,name-defined]
        """An async transport connecting only to addresses the policy allows; connections
        belong to the event loop that opened them, so it keeps one pool per running loop."""

        def __init__(self, policy: AddressPolicy, *, shared: bool) -> None:
            self._policy = policy
            self._shared = shared
            self._context: Any = None
            self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
                weakref.WeakKeyDictionary()
            )

        def _pool(self) -> Any:
            loop = asyncio.get_running_loop()
            transport = self._pools.get(loop)
            if transport is None:
                if self._context is None:
                    self._context = http.create_ssl_context(trust_env=False)
                transport = _pooled(library, self._policy, sync=False, context=self._context)
                self._pools[loop] = transport
            return transport

        async def handle_async_request(self, request: Any) -> Any:
            return await self._pool().handle_async_request(request)

        async def aclose(self) -> None:
            if self._shared:  # a shared one serves other clients
                return
            transport = self._pools.pop(asyncio.get_running_loop(), None)
            if transport is not None:
                await transport.aclose()

    return GuardedTransport, GuardedAsyncTransport


_shared: dict[tuple[Library, tuple[str, ...]], tuple[Any, Any]] = {}


def _shared_pair(library: Library, policy: AddressPolicy) -> tuple[Any, Any]:
    key = (library, policy.allowed)
    pair = _shared.get(key)
    if pair is None:
        sync_class, async_class = _classes(library)
        pair = (sync_class(policy, shared=True), async_class(policy, shared=True))
        _shared[key] = pair
    return pair


def shared_transports(
    policy: AddressPolicy,
) -> tuple[httpx.BaseTransport, httpx.AsyncBaseTransport]:
    """The process's guarded httpx transports for ``policy``, sync and async, made once.

    SDK clients are built per call; sharing the transports keeps their connections pooled
    instead of leaving a pool behind per call. Closing a client that uses them leaves them
    open.

    Args:
        policy: Which non-public hosts may be reached.

    Returns:
        ``(sync transport, async transport)`` for ``httpx.Client`` / ``httpx.AsyncClient``.
    """
    sync_transport, async_transport = _shared_pair("httpx", policy)
    return sync_transport, async_transport


def shared_transports2(
    policy: AddressPolicy,
) -> tuple[httpx2.BaseTransport, httpx2.AsyncBaseTransport]:
    """``shared_transports`` for httpx2, the HTTP library of the OpenAI and Anthropic SDKs."""
    sync_transport, async_transport = _shared_pair("httpx2", policy)
    return sync_transport, async_transport
