"""Meta's Instagram webhooks over HTTP: handshake, signatures over raw bytes, every recorded
payload stored as the right events, nothing stored on a bad signature, per-flow endpoints."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.core.db import Database
from socialflow.instagram import build_comment, encode_body, parse_body, sign_sha1, sign_sha256
from socialflow.orchestration import WebhookEvent
from tests.api.conftest import Team, api_settings, make_team
from tests.instagram.payloads import (
    EXPECTED,
    NOT_JSON,
    PAYLOADS,
    assert_event,
    payload_file,
)

SECRET = "meta-app-secret-for-tests"
IG_SECRET = "instagram-app-secret-for-tests"
TOKEN = "verify-me-123"
URL = "/webhooks/instagram"


@pytest.fixture
async def ig_client(db: Database, test_registry: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(
        db.url,
        instagram={
            "verify_token": TOKEN,
            "app_secrets": [SECRET, IG_SECRET],
            "max_webhook_bytes": 1_500_000,
        },
    )
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign_sha256(secret, body)}


async def rows(db: Database, keys: list[str]) -> list[WebhookEvent]:
    async with db.sessionmaker() as session:
        found = await session.scalars(select(WebhookEvent).where(WebhookEvent.dedupe_key.in_(keys)))
        return list(found.all())


async def count(db: Database, *where: Any) -> int:
    async with db.sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(WebhookEvent).where(*where))
        return int(total or 0)


# -- handshake -------------------------------------------------------------------------------


# stable names: a random id would name the test differently in each process of a run
@pytest.mark.parametrize("path", [URL, f"{URL}/{uuid.uuid4()}"], ids=["app", "flow"])
async def test_handshake_echoes_the_challenge_as_text(
    ig_client: httpx.AsyncClient, path: str
) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "1158201444"}
    answer = await ig_client.get(path, params=params)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "1158201444"


@pytest.mark.parametrize(
    ("override", "status"),
    [
        ({"hub.verify_token": "wrong"}, 403),
        ({"hub.mode": "unsubscribe"}, 403),
        ({"hub.mode": ""}, 403),
        ({"hub.challenge": "<script>alert(1)</script>"}, 403),
        ({"hub.challenge": "1 OR 1=1"}, 403),
    ],
)
async def test_handshake_refusals(
    ig_client: httpx.AsyncClient, override: dict[str, str], status: int
) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "42"}
    answer = await ig_client.get(URL, params={**params, **override})
    assert answer.status_code == status, answer.text
    assert "script" not in answer.text and answer.json()["code"] in (
        "webhook_verification_failed",
        "invalid_challenge",
    )


async def test_handshake_without_a_configured_token_is_refused(
    client: httpx.AsyncClient,
) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "42"}
    assert (await client.get(URL, params=params)).status_code == 403


# -- every recorded payload ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recorded_payload_is_stored_as_the_right_events(
    ig_client: httpx.AsyncClient, db: Database, name: str
) -> None:
    body = payload_file(name).read_bytes()
    keys = [key for key, _ in EXPECTED[name]]
    # the documentation's placeholder ids repeat across files: start from no such event
    async with db.sessionmaker() as session:
        await session.execute(delete(WebhookEvent).where(WebhookEvent.dedupe_key.in_(keys)))
        await session.commit()

    wrong = await ig_client.post(URL, content=body, headers=signed(body, "not-the-secret"))
    assert wrong.status_code == 401 and wrong.json()["code"] == "webhook_signature_invalid"
    unsigned = await ig_client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert await count(db, WebhookEvent.dedupe_key.in_(keys)) == 0

    # signed with the second configured secret (the Instagram app secret)
    answer = await ig_client.post(URL, content=body, headers=signed(body, IG_SECRET))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": len(keys), "stored": len(keys), "duplicates": 0}
    stored = {row.dedupe_key: row for row in await rows(db, keys)}
    assert set(stored) == set(keys)
    for key, fields in EXPECTED[name]:
        row = stored[key]
        assert row.source == "instagram"
        assert row.kind == f"instagram.{fields['kind']}"
        assert row.workspace_id is None and row.flow_id is None
        assert row.account_id == row.payload["account_id"]
        assert row.status == "pending"
        assert_event(row.payload, fields, f"{name} {key}")


@pytest.mark.parametrize("name", NOT_JSON)
async def test_a_body_that_is_not_json_is_400_and_stores_nothing(
    ig_client: httpx.AsyncClient, db: Database, name: str
) -> None:
    body = (PAYLOADS / name).read_bytes()
    before = await count(db)
    answer = await ig_client.post(URL, content=body, headers=signed(body))
    assert answer.status_code == 400 and answer.json()["code"] == "malformed_body"
    assert await count(db) == before


async def test_non_ascii_escaped_body_verifies_against_its_raw_bytes(
    ig_client: httpx.AsyncClient, db: Database
) -> None:
    payload = build_comment("Preis? äöå 😀", account_id="17841400000000077")
    body = encode_body(payload)
    assert b"\\u00e4\\u00f6\\u00e5" in body and "ä".encode() not in body
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()
    key = parse_body(body)[0].dedupe_key
    # the signature of the raw bytes does not cover the same JSON written differently
    refused = await ig_client.post(URL, content=reserialised, headers=signed(body))
    assert refused.status_code == 401
    assert await count(db, WebhookEvent.dedupe_key == key) == 0
    accepted = await ig_client.post(URL, content=body, headers=signed(body))
    assert accepted.status_code == 200
    [row] = await rows(db, [key])
    assert row.payload["text"] == "Preis? äöå 😀"


async def test_sha1_only_header_is_refused_by_default(
    ig_client: httpx.AsyncClient, db: Database
) -> None:
    body = encode_body(build_comment("sha1 please"))
    headers = {"Content-Type": "application/json", "X-Hub-Signature": sign_sha1(SECRET, body)}
    answer = await ig_client.post(URL, content=body, headers=headers)
    assert answer.status_code == 401
    assert "X-Hub-Signature-256" in answer.json()["message"]


async def test_large_batches_pass_the_api_limit_but_not_the_webhook_limit(
    ig_client: httpx.AsyncClient, db: Database
) -> None:
    # larger than api.max_body_bytes (1 MB), within instagram.max_webhook_bytes (1.5 MB here)
    big = encode_body(build_comment("x" * 1_100_000))
    answer = await ig_client.post(URL, content=big, headers=signed(big))
    assert answer.status_code == 200, answer.text[:200]
    too_big = encode_body(build_comment("y" * 1_600_000))
    before = await count(db)
    answer = await ig_client.post(URL, content=too_big, headers=signed(too_big))
    assert answer.status_code == 413
    assert await count(db) == before


async def test_redelivery_is_acknowledged_as_duplicate(ig_client: httpx.AsyncClient) -> None:
    body = encode_body(build_comment("again and again"))
    answers = [
        (await ig_client.post(URL, content=body, headers=signed(body))).json() for _ in "abc"
    ]
    assert [a["duplicates"] for a in answers] == [0, 1, 1]
    assert [a["stored"] for a in answers] == [1, 0, 0]


# -- per-flow endpoint -----------------------------------------------------------------------


def comment_graph() -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "ig", "kind": "instagram.comment", "config": {"keywords": ["price"]}},
            {"id": "note", "kind": "data.set", "config": {"values": {"t": "{{ trigger.text }}"}}},
        ],
        "edges": [{"source": "ig", "source_port": "event", "target": "note"}],
    }


async def publish_flow(client: httpx.AsyncClient, team: Team, graph: dict[str, Any]) -> str:
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await client.post(
        base, json={"name": "IG", "graph": graph}, headers=team.editor.headers
    )
    assert created.status_code == 201, created.text
    flow_id = str(created.json()["id"])
    published = await client.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    assert published.status_code == 201, published.text
    return flow_id


@pytest.mark.prefect
async def test_per_flow_endpoint_scopes_events_to_the_flow(
    ig_client: httpx.AsyncClient, db: Database
) -> None:
    team = await make_team(ig_client)
    flow_id = await publish_flow(ig_client, team, comment_graph())
    body = encode_body(build_comment("what price?"))
    unsigned = await ig_client.post(f"{URL}/{flow_id}", content=body)
    assert unsigned.status_code == 401
    answer = await ig_client.post(f"{URL}/{flow_id}", content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    [row] = await rows(db, [parse_body(body, key_scope=f"flow:{flow_id}")[0].dedupe_key])
    assert row.flow_id == uuid.UUID(flow_id)
    assert row.workspace_id == uuid.UUID(team.workspace_id)
    # the same comment on the app-level endpoint is a separate delivery
    app_level = await ig_client.post(URL, content=body, headers=signed(body))
    assert app_level.json()["duplicates"] == 0
    missing = await ig_client.post(f"{URL}/{uuid.uuid4()}", content=body, headers=signed(body))
    assert missing.status_code == 404 and missing.json()["code"] == "webhook_not_found"


async def test_sha1_fallback_when_the_setting_allows_it(db: Database, test_registry: Any) -> None:
    settings = api_settings(
        db.url, instagram={"app_secrets": [SECRET], "allow_sha1_signature": True}
    )
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    body = encode_body(build_comment("legacy signature"))
    key = parse_body(body)[0].dedupe_key
    sha1 = {"Content-Type": "application/json", "X-Hub-Signature": sign_sha1(SECRET, body)}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            # a wrong SHA-256 header is not rescued by a right SHA-1 one
            both = {**sha1, "X-Hub-Signature-256": "sha256=" + "0" * 64}
            assert (await http.post(URL, content=body, headers=both)).status_code == 401
            assert await count(db, WebhookEvent.dedupe_key == key) == 0
            assert (await http.post(URL, content=body, headers=sha1)).status_code == 200
    assert await count(db, WebhookEvent.dedupe_key == key) == 1
