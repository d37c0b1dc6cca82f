"""Outbound HTTP that user input steers: refuse private, loopback, link-local and metadata
addresses, after DNS resolution and after every redirect, unless an admin allowed the host.

The address that was checked is the address that is connected to (the URL is pinned to the
resolved IP, with ``Host`` and TLS server name kept), so DNS rebinding cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from socialflow.core.errors import TransientError, UserError

__all__ = ["AddressPolicy", "guarded_request", "is_public_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_REDIRECTS = {301, 302, 303, 307, 308}


def is_public_address(ip: IPAddress) -> bool:
    """Whether ``ip`` is a globally routable unicast address (not private, loopback, …)."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_public_address(mapped)
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts outbound requests may reach.

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
        """A policy allowing the given exceptions."""
        return cls(tuple(hosts))

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host``, after checking it.

        Raises:
            UserError: The host resolves to an address that is not allowed, or not at all.
        """
        host = host.lower().rstrip(".")
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = await _lookup(host, port)
        if host in self._names:
            return str(addresses[0])
        for ip in addresses:
            if not is_public_address(ip) and not any(ip in net for net in self._networks):
                msg = (
                    f"refusing to connect to {host!r}: it resolves to {ip}, a private, loopback, "
                    "link-local or reserved address; an admin can allow the host in "
                    "SOCIALFLOW_HTTP_ALLOWED_HOSTS"
                )
                raise UserError(
                    msg, code="address_forbidden", details={"host": host, "ip": str(ip)}
                )
        return str(addresses[0])


async def _lookup(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        msg = f"cannot resolve host {host!r}: {exc.strerror}"
        raise UserError(msg, code="host_unresolvable") from exc
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in found:
            found.append(ip)
    return found


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
