"""The node palette: every kind described, newest versions by default, ETag and 304."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import sign_up


async def test_node_types_describe_every_kind(client: httpx.AsyncClient, app: Any) -> None:
    actor = await sign_up(client)
    answer = await client.get("/api/node-types", headers=actor.headers)
    assert answer.status_code == 200
    kinds = answer.json()
    registry = app.state.registry
    assert [k["kind"] for k in kinds] == sorted({node.kind for node in registry})
    greet = next(k for k in kinds if k["kind"] == "test.greet")
    assert greet["version"] == 2  # the newest version only
    assert set(greet["config_schema"]["properties"]) == {"who"}
    manual = next(k for k in kinds if k["kind"] == "trigger.manual")
    assert manual["category"] == "trigger"
    assert manual["inputs"] == []
    assert manual["outputs"][0]["name"] == "event"
    assert manual["config_schema"]["type"] == "object"
    assert set(manual) == {
        "kind",
        "version",
        "title",
        "description",
        "category",
        "icon",
        "credentials",
        "inputs",
        "outputs",
        "config_schema",
        "example_config",
    }
    schedule = next(k for k in kinds if k["kind"] == "trigger.schedule")
    assert schedule["example_config"] == {"interval_seconds": 3600}

    every = (
        await client.get("/api/node-types", params={"all_versions": "true"}, headers=actor.headers)
    ).json()
    assert len(every) == len(registry)
    assert [(k["kind"], k["version"]) for k in every if k["kind"] == "test.greet"] == [
        ("test.greet", 1),
        ("test.greet", 2),
    ]


async def test_node_types_etag_and_not_modified(client: httpx.AsyncClient) -> None:
    actor = await sign_up(client)
    first = await client.get("/api/node-types", headers=actor.headers)
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong
    again = await client.get("/api/node-types", headers=actor.headers)
    assert again.headers["etag"] == etag
    assert again.content == first.content

    for sent in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        cached = await client.get(
            "/api/node-types", headers={**actor.headers, "If-None-Match": sent}
        )
        assert cached.status_code == 304, sent
        assert cached.content == b""
        assert cached.headers["etag"] == etag

    stale = await client.get(
        "/api/node-types", headers={**actor.headers, "If-None-Match": '"stale"'}
    )
    assert stale.status_code == 200
    assert stale.content == first.content

    every = await client.get(
        "/api/node-types",
        params={"all_versions": "true"},
        headers={**actor.headers, "If-None-Match": etag},
    )
    assert every.status_code == 200  # a different document, a different tag
    assert every.headers["etag"] != etag


async def test_node_types_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/node-types")
    assert answer.status_code == 401
    assert "code" in answer.json()
