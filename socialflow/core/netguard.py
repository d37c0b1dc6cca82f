"""Outbound HTTP that user input steers: refuse private, loopback, link-local, metadata and
every other special-purpose address, after DNS resolution and after every redirect, unless an
admin allowed the host in ``SOCIALFLOW_HTTP_ALLOWED_HOSTS``.

One guard for every such URL: ``AddressPolicy`` decides, with the address classes of
``_ipranges``. It is applied when a URL is saved (``AddressPolicy.check_url``: a credential's
``base_url`` or ``endpoint_url``) and again when connecting: ``guarded_request`` (the HTTP
node) pins the URL to the address it checked, and the transports of ``_guarded_transport``
(the SDK clients of LLM and embedding providers) check in the network backend and connect to
the checked address. Either way DNS rebinding cannot slip through, and a refused request never
reaches the remote host, so its answer cannot leak into an error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from socialflow.core._guarded_transport import shared_transports, shared_transports2
from socialflow.core._ipranges import (
    IPAddress,
    embedded_ipv4,
    forbidden_reason,
    is_public_address,
)
from socialflow.core.errors import TransientError, UserError

__all__ = [
    "AddressPolicy",
    "forbidden_reason",
    "guarded_request",
    "is_public_address",
    "refusal_in",
    "shared_transports",
    "shared_transports2",
]

_REDIRECTS = {301, 302, 303, 307, 308}
#: codes of the guard's own refusals (what ``refusal_in`` looks for)
_REFUSALS = frozenset({"address_forbidden", "invalid_url"})
_ALLOW_HINT = "an admin can allow the host in SOCIALFLOW_HTTP_ALLOWED_HOSTS"


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts outbound requests may reach: public addresses, plus admin exceptions.

    Args:
        allowed: Admin exceptions: host names (exact, case-insensitive), IP addresses or CIDR
            ranges that may be reached even though they are not public.
    """

    allowed: tuple[str, ...] = ()
    _names: frozenset[str] = field(init=False, repr=False)
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        names: set[str] = set()
        networks = []
        for entry in self.allowed:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_networks", tuple(networks))

    @classmethod
    def from_hosts(cls, hosts: Iterable[str]) -> AddressPolicy:
        """A policy allowing the given exceptions (``settings.http.allowed_hosts``)."""
        return cls(tuple(hosts))

    def _allowed_address(self, ip: IPAddress) -> bool:
        embedded = embedded_ipv4(ip)
        candidates = (ip,) if embedded is None else (ip, embedded[0])
        return any(c in net for c in candidates for net in self._networks)

    def check(self, host: str, addresses: Sequence[IPAddress]) -> None:
        """Refuse ``host`` unless it is allowed by name or every address of it may be reached.

        Args:
            host: The host name or literal address, as in the URL.
            addresses: What it resolved to.

        Raises:
            UserError: ``address_forbidden``, naming the host, the address and its range.
        """
        host = _normal(host)
        if host in self._names:
            return
        literal = _literal(host) is not None
        for ip in addresses:
            reason = forbidden_reason(ip)
            if reason is None or self._allowed_address(ip):
                continue
            where = f"{ip} is" if literal else f"it resolves to {ip}, which is"
            msg = (
                f"refusing to connect to {host!r}: {where} {reason}; only public addresses "
                f"are reachable, {_ALLOW_HINT}"
            )
            raise UserError(
                msg,
                code="address_forbidden",
                details={"host": host, "ip": str(ip), "reason": reason},
            )

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host``, after checking them all.

        Raises:
            UserError: ``address_forbidden``; ``host_unresolvable`` when it does not resolve.
        """
        found = _literal(host)
        if found is None:
            found = await _lookup(_normal(host), port)
        self.check(host, found)
        return found

    def addresses_sync(self, host: str, port: int) -> list[IPAddress]:
        """``addresses`` for sync clients (resolves in the calling thread)."""
        found = _literal(host)
        if found is None:
            try:
                infos = socket.getaddrinfo(_normal(host), port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise _unresolvable(host, exc) from exc
            found = _unique(infos)
        self.check(host, found)
        return found

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host``, after checking it.

        Raises:
            UserError: The host resolves to an address that is not allowed, or not at all.
        """
        return str((await self.addresses(host, port))[0])

    async def check_url(self, url: str, *, resolve_timeout: float = 5.0) -> None:
        """Check a URL a user is saving: scheme, no user info, and where its host leads now.

        A name that does not resolve within ``resolve_timeout`` is accepted: DNS may differ
        where the URL is used, and the check at connection time still applies.

        Args:
            url: The URL as given.
            resolve_timeout: Seconds to wait for DNS.

        Raises:
            UserError: ``invalid_url`` (not an absolute http(s) URL, or it holds a user name
                or password) or ``address_forbidden``.
        """
        try:
            parsed = httpx.URL(url)
            host = parsed.host  # decodes IDNA, which may refuse the name only now
        except (httpx.InvalidURL, UnicodeError) as exc:
            msg = f"not a valid URL: {exc}"
            raise UserError(msg, code="invalid_url") from exc
        if parsed.scheme not in ("http", "https") or not host:
            msg = "only absolute http:// and https:// URLs are allowed"
            raise UserError(msg, code="invalid_url")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            msg = f"port {parsed.port} is out of range; ports are 1 to 65535"
            raise UserError(msg, code="invalid_url")
        if parsed.userinfo:
            msg = (
                "a user name or password in the URL is not allowed (it hides the real host "
                "from readers); put keys in the credential's key field"
            )
            raise UserError(msg, code="invalid_url")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            await asyncio.wait_for(self.addresses(host, port), resolve_timeout)
        except TimeoutError:
            return
        except UserError as exc:
            if exc.code != "host_unresolvable":
                raise


def refusal_in(exc: BaseException) -> UserError | None:
    """The guard's refusal behind an exception an SDK raised, if that is what it was.

    SDKs wrap what their transport raised (OpenAI and Anthropic into ``APIConnectionError``);
    the refusal is found through ``__cause__`` and ``__context__``.

    Args:
        exc: What a client raised.

    Returns:
        The ``address_forbidden`` or ``invalid_url`` error, or None.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UserError) and current.code in _REFUSALS:
            return current
        current = current.__cause__ or current.__context__
    return None


def _normal(host: str) -> str:
    return host.lower().strip("[]").rstrip(".")


def _literal(host: str) -> list[IPAddress] | None:
    try:
        return [ipaddress.ip_address(_normal(host))]
    except ValueError:
        return None


def _unresolvable(host: str, exc: Exception) -> UserError:
    reason = exc.strerror if isinstance(exc, OSError) else str(exc)
    msg = f"cannot resolve host {host!r}: {reason}"
    return UserError(msg, code="host_unresolvable", details={"host": host})


def _unique(infos: Iterable[tuple[Any, ...]]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in found:
            found.append(ip)
    return found


async def _lookup(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _unresolvable(host, exc) from exc
    return _unique(infos)


async def guarded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: AddressPolicy,
    max_redirects: int = 5,
    max_bytes: int = 5_000_000,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request whose every hop is checked against ``policy``.

    Args:
        client: The client to send with; its own redirect following is not used.
        method: HTTP method.
        url: Absolute http(s) URL.
        policy: Which non-public hosts are allowed.
        max_redirects: Redirects followed at most.
        max_bytes: Larger response bodies are refused.
        **kwargs: Passed to ``client.build_request`` (headers, json, data, content, timeout).

    Returns:
        The final response, body read.

    Raises:
        UserError: Bad URL, forbidden address, too many redirects, response too large.
        TransientError: Connection failures and timeouts.
    """
    current = httpx.URL(url)
    for _hop in range(max_redirects + 1):
        if current.scheme not in ("http", "https") or not current.host:
            msg = f"only absolute http and https URLs are allowed, got {str(current)!r}"
            raise UserError(msg, code="invalid_url")
        port = current.port or (443 if current.scheme == "https" else 80)
        address = await policy.resolve(current.host, port)
        request = client.build_request(method, current.copy_with(host=address), **kwargs)
        request.headers["Host"] = current.netloc.decode("ascii")
        if current.scheme == "https":
            request.extensions["sni_hostname"] = current.host
        shown = str(request.url.copy_with(host=current.host))
        response = await _send(client, request, shown, max_bytes)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            return response
        current = current.join(location)
        if response.status_code == 303 or (
            response.status_code in (301, 302) and method.upper() == "POST"
        ):
            method = "GET"
            kwargs = {k: v for k, v in kwargs.items() if k not in ("json", "data", "content")}
    msg = f"more than {max_redirects} redirects starting at {url!r}"
    raise UserError(msg, code="too_many_redirects")


async def _send(
    client: httpx.AsyncClient, request: httpx.Request, shown_url: str, max_bytes: int
) -> httpx.Response:
    try:
        response = await client.send(request, stream=True, follow_redirects=False)
    except httpx.TimeoutException as exc:
        msg = f"request to {shown_url} timed out"
        raise TransientError(msg, code="http_timeout") from exc
    except httpx.TransportError as exc:
        msg = f"request to {shown_url} failed: {type(exc).__name__}: {exc}"
        raise TransientError(msg, code="http_unreachable") from exc
    try:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                msg = f"response from {shown_url} is larger than {max_bytes} bytes"
                raise UserError(msg, code="response_too_large")
    finally:
        await response.aclose()
    response._content = bytes(body)  # the body was read by hand to cap its size
    # the request went to the pinned IP; keep the URL the caller knows for reports
    response.extensions = {**response.extensions, "logical_url": shown_url}
    return response
