"""The HTTP request node reaches public hosts and refuses private ones, redirects included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from socialflow.core.errors import TransientError, UserError
from socialflow.core.netguard import AddressPolicy, is_public_address
from socialflow.core.settings import Settings
from socialflow.nodes.builtins import HttpRequestNode
from tests.fixtures.context import make_context
from tests.fixtures.http_server import EchoServer, serve


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with serve() as running:
        yield running


def _port(server: EchoServer) -> int:
    return server.port


async def _run(
    config: dict[str, Any], *, allowed: list[str], trigger: dict[str, Any] | None = None
) -> dict[str, Any]:
    node = HttpRequestNode(HttpRequestNode.Config.model_validate(config))
    settings = Settings(http={"allowed_hosts": allowed})
    async with httpx.AsyncClient(trust_env=False) as client:
        ctx = make_context(settings=settings, http=client, trigger=trigger or {}, node_id="call")
        return await node.run(ctx)


async def test_allowed_loopback_host_is_reached_with_templates(server: EchoServer) -> None:
    port = _port(server)
    result = await _run(
        {
            "method": "POST",
            "url": f"http://127.0.0.1:{port}/items/{{{{ trigger.sku }}}}",
            "headers": {"X-User": "{{ trigger.user }}"},
            "query": {"q": "{{ trigger.sku | upper }}"},
            "body_type": "json",
            "body": "{{ trigger }}",
        },
        allowed=["127.0.0.1"],
        trigger={"sku": "mug", "user": "ana"},
    )
    response = result["response"]
    assert response["status"] == 200
    assert response["body"]["path"] == "/items/mug"
    assert response["body"]["query"] == {"q": "MUG"}
    assert response["body"]["headers"]["x-user"] == "ana"
    assert response["body"]["body"] == '{"sku":"mug","user":"ana"}'
    assert response["body"]["host"] == f"127.0.0.1:{port}"
    assert response["url"] == f"http://127.0.0.1:{port}/items/mug?q=MUG"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://10.0.0.1/",
        "http://10.200.3.4:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/",
        "http://localhost:{port}/",
        "http://0.0.0.0:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
    ],
)
async def test_private_addresses_are_refused_before_connecting(
    server: EchoServer, url: str
) -> None:
    with pytest.raises(UserError) as info:
        await _run({"url": url.format(port=_port(server))}, allowed=[])
    assert info.value.code == "address_forbidden"
    assert "SOCIALFLOW_HTTP_ALLOWED_HOSTS" in info.value.message
    assert server.hits == []


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/secret",
        "http://localhost:{port}/secret",
    ],
)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirect_to_a_private_address_is_refused(
    server: EchoServer, target: str, status: int
) -> None:
    # the entry server sits on 127.0.0.2, which the admin allowed; every target is elsewhere
    with serve("127.0.0.2") as entry_server:
        entry = f"http://127.0.0.2:{_port(entry_server)}/redirect"
        location = target.format(port=_port(server))
        with pytest.raises(UserError) as info:
            await _run(
                {"url": entry, "query": {"to": location, "status": str(status)}},
                allowed=["127.0.0.2"],
            )
        hits = entry_server.hits
    assert info.value.code == "address_forbidden"
    assert server.hits == []
    assert len(hits) == 1, "only the redirecting hop may be requested"
    assert hits[0].startswith("/redirect?")


async def test_redirect_within_allowed_hosts_is_followed(server: EchoServer) -> None:
    port = _port(server)
    result = await _run(
        {
            "url": f"http://127.0.0.1:{port}/redirect",
            "query": {"to": "/final?x=1", "status": "303"},
            "method": "POST",
            "body_type": "text",
            "body": "hi",
        },
        allowed=["127.0.0.1"],
    )
    body = result["response"]["body"]
    assert body["path"] == "/final"
    assert body["method"] == "GET"  # 303 turns the follow-up into a GET without a body


async def test_too_many_redirects(server: EchoServer) -> None:
    port = _port(server)
    with pytest.raises(UserError) as info:
        await _run({"url": f"http://127.0.0.1:{port}/loop"}, allowed=["127.0.0.1"])
    assert info.value.code == "too_many_redirects"
    assert len(server.hits) == 6  # the first hop and 5 redirects


async def test_status_errors_are_classified(server: EchoServer) -> None:
    port = _port(server)
    with pytest.raises(UserError) as client_error:
        await _run({"url": f"http://127.0.0.1:{port}/x?status=404"}, allowed=["127.0.0.1"])
    assert client_error.value.details == {"status": 404}
    with pytest.raises(TransientError):
        await _run({"url": f"http://127.0.0.1:{port}/x?status=503"}, allowed=["127.0.0.1"])
    passed = await _run(
        {"url": f"http://127.0.0.1:{port}/x?status=404", "fail_on_status": False},
        allowed=["127.0.0.1"],
    )
    assert passed["response"]["status"] == 404


async def test_unreachable_host_is_transient() -> None:
    with pytest.raises(TransientError):
        await _run({"url": "http://127.0.0.1:9/"}, allowed=["127.0.0.1"])


async def test_policy_allows_cidr_ranges_and_names() -> None:
    policy = AddressPolicy.from_hosts(["10.1.0.0/16", "Intranet.Example"])
    assert await policy.resolve("10.1.2.3", 80) == "10.1.2.3"
    with pytest.raises(UserError):
        await policy.resolve("10.2.0.1", 80)


def test_public_address_classification() -> None:
    import ipaddress

    assert is_public_address(ipaddress.ip_address("93.184.216.34"))
    assert is_public_address(ipaddress.ip_address("2606:2800:220:1::1"))
    for private in (
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "0.0.0.0",
    ):
        assert not is_public_address(ipaddress.ip_address(private)), private


async def test_a_sandboxed_run_describes_the_request_and_sends_nothing(
    server: EchoServer,
) -> None:
    import dataclasses

    port = _port(server)
    node = HttpRequestNode(
        HttpRequestNode.Config.model_validate(
            {
                "method": "POST",
                "url": f"http://127.0.0.1:{port}/orders",
                "body_type": "json",
                "body": "{{ trigger }}",
            }
        )
    )
    settings = Settings(http={"allowed_hosts": ["127.0.0.1"]})
    async with httpx.AsyncClient(trust_env=False) as client:
        ctx = make_context(settings=settings, http=client, trigger={"sku": "mug"}, node_id="call")
        result = await node.run(dataclasses.replace(ctx, sandbox=True))
    response = result["response"]
    assert response["sandboxed"] is True
    assert response["status"] is None
    assert response["request"]["method"] == "POST"
    assert response["request"]["json"] == {"sku": "mug"}
    assert server.hits == []
