"""The address guard's classes: every IANA special-purpose range is refused, and IPv6 forms
that carry an IPv4 address are judged by that address."""

from __future__ import annotations

import ipaddress

import pytest

from socialflow.core.errors import UserError
from socialflow.core.netguard import AddressPolicy, forbidden_reason, is_public_address

FORBIDDEN_ADDRESSES = [
    ("0.0.0.0", "'this network'"),
    ("10.1.2.3", "private-use"),
    ("100.64.0.1", "shared address space"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),
    ("172.16.0.1", "private-use"),
    ("192.0.0.9", "IETF protocol assignments"),
    ("192.0.2.1", "documentation"),
    ("192.31.196.1", "AS112"),
    ("192.52.193.1", "AMT"),
    ("192.88.99.1", "6to4 relay"),
    ("192.168.1.1", "private-use"),
    ("192.175.48.1", "AS112"),
    ("198.18.0.1", "benchmarking"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::7f00:1", "IPv4-compatible (::/96, RFC 4291) form of 127.0.0.1, loopback"),
    ("::a9fe:a9fe", "IPv4-compatible (::/96, RFC 4291) form of 169.254.169.254"),
    ("::ffff:127.0.0.1", "IPv4-mapped (::ffff:0:0/96, RFC 4291) form of 127.0.0.1"),
    ("::ffff:10.0.0.1", "IPv4-mapped (::ffff:0:0/96, RFC 4291) form of 10.0.0.1"),
    ("::ffff:0:7f00:1", "not global unicast"),  # IPv4-translated (SIIT)
    ("64:ff9b::7f00:1", "NAT64 well-known prefix (64:ff9b::/96, RFC 6052) form of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 well-known prefix (64:ff9b::/96, RFC 6052) form of"),
    ("64:ff9b:1::808:808", "local-use NAT64"),
    ("100::1", "discard-only"),
    ("2001::1", "Teredo"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("2001:2::1", "IETF protocol assignments"),
    ("2001:db8::1", "documentation"),
    ("2002:7f00:1::1", "6to4"),
    ("2002:808:808::1", "6to4"),
    ("2620:4f:8000::1", "AS112"),
    ("3fff::1", "documentation"),
    ("5f00::1", "SRv6"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("4000::1", "not global unicast"),
]

PUBLIC_ADDRESSES = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "2606:2800:220:1::1",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # what a dual-stack resolver may answer for a public IPv4 host
    "64:ff9b::808:808",  # what DNS64 answers on an IPv6-only network for a public IPv4 host
]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN_ADDRESSES)
def test_every_special_purpose_address_is_refused(address: str, reason: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public_address(ip)
    found = forbidden_reason(ip)
    assert found is not None and reason in found, found


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_are_reachable(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_an_allowed_range_admits_the_ipv4_inside_a_mapped_address() -> None:
    policy = AddressPolicy.from_hosts(["127.0.0.0/8"])
    policy.check("::ffff:127.0.0.1", [ipaddress.ip_address("::ffff:127.0.0.1")])
    with pytest.raises(UserError) as refused:
        policy.check("::ffff:10.0.0.1", [ipaddress.ip_address("::ffff:10.0.0.1")])
    assert refused.value.code == "address_forbidden"
    assert "form of 10.0.0.1, private-use" in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "http:///v1",
        "http://user:secret@example.com/v1",
        "http://xn--/",
        "http://[::1/",
        "http://example.com:99999/",
    ],
)
async def test_urls_that_are_not_plain_http_urls_are_refused_when_saved(url: str) -> None:
    with pytest.raises(UserError) as refused:
        await AddressPolicy().check_url(url)
    assert refused.value.code == "invalid_url"


async def test_a_name_that_does_not_resolve_yet_may_be_saved() -> None:
    # the check when connecting still applies; DNS where the URL is used may differ
    await AddressPolicy().check_url("https://models.invalid/v1")
