"""Hostile JSON at every door: 100,000 nested arrays or objects, a lone surrogate escape, NaN.

Every route that takes JSON — both Instagram webhook routes (validly signed over the hostile
body), ``/hooks/{flow_id}`` (shared secret and HMAC), and API routes (a flow, a graph, a
credential, a sign-up) — answers 400 with a stable code and stores nothing, on SQLite and
PostgreSQL. Before the edge decoded strictly, the webhooks answered 500 (``RecursionError``)
and a lone surrogate reached the database (500 on PostgreSQL, a stored event on SQLite).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.api.auth.models import User
from socialflow.api.flows.models import Flow
from socialflow.api.hooks import signing
from socialflow.api.workspaces.models import Workspace
from socialflow.core.credentials import Credential
from socialflow.core.db import Database
from socialflow.instagram import sign_sha256
from socialflow.instagram._simulate import build_comment, encode_body
from socialflow.orchestration import WebhookEvent
from tests.api.conftest import Team, api_settings, make_team
from tests.api.test_hooks import hook_graph
from tests.api.test_instagram_webhooks import comment_graph

SECRET = "meta-app-secret-for-json-edge-tests"
DEPTH = 100_000
NESTED_ARRAYS = b"[" * DEPTH + b"]" * DEPTH
NESTED_OBJECTS = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH


def _with_lone_surrogate(valid: dict[str, Any], text_field: Callable[[Any], None]) -> bytes:
    """``valid`` serialised with a lone ``\\ud800`` escape in one of its text fields."""
    text_field(valid)
    return json.dumps(valid, ensure_ascii=True).encode()


def _instagram_comment_with_lone_surrogate() -> bytes:
    body = encode_body(build_comment("MARKER"))
    assert body.count(b"MARKER") == 1
    return body.replace(b"MARKER", b"price \\ud800")


EVIL: dict[str, tuple[bytes | None, str]] = {
    "100k nested arrays": (NESTED_ARRAYS, "json_too_deep"),
    "100k nested objects": (NESTED_OBJECTS, "json_too_deep"),
    # the body is filled in per route: a valid request but for one lone surrogate
    "lone surrogate": (None, "invalid_unicode"),
}


@pytest.fixture(scope="module")
async def edge(db: Database, test_registry: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Team]]:
    settings = api_settings(db.url, instagram={"app_secrets": [SECRET]})
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, await make_team(http)


async def _count(db: Database, model: Any) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _publish(http: httpx.AsyncClient, team: Team, graph: dict[str, Any]) -> str:
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await http.post(
        base, json={"name": "Edge", "graph": graph}, headers=team.editor.headers
    )
    assert created.status_code == 201, created.text
    flow_id = str(created.json()["id"])
    published = await http.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    assert published.status_code == 201, published.text
    return flow_id


def _assert_refused(answer: httpx.Response, code: str, label: str) -> None:
    assert answer.status_code == 400, f"{label}: {answer.status_code} {answer.text[:300]}"
    body = answer.json()
    assert body["code"] == code, f"{label}: {body}"
    assert body["message"], label


async def test_instagram_routes_refuse_hostile_json_with_a_valid_signature(
    edge: tuple[httpx.AsyncClient, Team], db: Database
) -> None:
    http, team = edge
    flow_id = await _publish(http, team, comment_graph())
    before = await _count(db, WebhookEvent)
    for case, (evil, code) in EVIL.items():
        body = evil if evil is not None else _instagram_comment_with_lone_surrogate()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign_sha256(SECRET, body),
        }
        for url in ("/webhooks/instagram", f"/webhooks/instagram/{flow_id}"):
            answer = await http.post(url, content=body, headers=headers)
            _assert_refused(answer, code, f"{url} {case}")
    assert await _count(db, WebhookEvent) == before
    # the same door still takes a well-formed signed comment, emoji escapes and all
    fine = encode_body(build_comment("price? \U0001f600"))
    ok = await http.post(
        f"/webhooks/instagram/{flow_id}",
        content=fine,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign_sha256(SECRET, fine),
        },
    )
    assert ok.status_code == 200, ok.text
    assert await _count(db, WebhookEvent) == before + 1


@pytest.mark.parametrize("auth", ["header", "hmac_sha256"])
async def test_the_generic_webhook_refuses_hostile_json(
    edge: tuple[httpx.AsyncClient, Team], db: Database, auth: str
) -> None:
    http, team = edge
    flow_id = await _publish(http, team, hook_graph(auth=auth))
    info = await http.get(
        f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/webhook",
        headers=team.editor.headers,
    )
    secret = info.json()["secret"]

    def headers_for(payload: bytes) -> dict[str, str]:
        if auth == "hmac_sha256":
            return {"Content-Type": "application/json", **signing.sign(secret, payload)}
        return {"Content-Type": "application/json", "X-Socialflow-Secret": secret}

    cases = {
        **EVIL,
        "NaN": (b'{"n": NaN}', "invalid_number"),
        "-Infinity": (b'{"n": -Infinity}', "invalid_number"),
        "a float overflowing to infinity": (b'{"n": 1e400}', "invalid_number"),
    }
    before = await _count(db, WebhookEvent)
    for case, (evil, code) in cases.items():
        body = evil or _with_lone_surrogate(
            {"order": {"note": ""}}, lambda v: v["order"].update(note="\ud800")
        )
        answer = await http.post(f"/hooks/{flow_id}", content=body, headers=headers_for(body))
        _assert_refused(answer, code, case)
    assert await _count(db, WebhookEvent) == before
    fine = json.dumps({"order": {"note": "ok \U0001f600"}}, ensure_ascii=True).encode()
    accepted = await http.post(f"/hooks/{flow_id}", content=fine, headers=headers_for(fine))
    assert accepted.status_code == 202, accepted.text
    assert await _count(db, WebhookEvent) == before + 1


def _graph_with(config_value: Any) -> dict[str, Any]:
    graph = hook_graph()
    graph["nodes"][1]["config"]["values"]["hostile"] = config_value
    return graph


async def test_api_routes_refuse_hostile_json(
    edge: tuple[httpx.AsyncClient, Team], db: Database
) -> None:
    http, team = edge
    flow_id = await _publish(http, team, hook_graph())
    for case, (evil, code) in EVIL.items():
        await _api_refuses(http, team, db, flow_id, case, evil, code)


async def _api_refuses(
    http: httpx.AsyncClient,
    team: Team,
    db: Database,
    flow_id: str,
    case: str,
    evil: bytes | None,
    code: str,
) -> None:
    base = f"/api/workspaces/{team.workspace_id}"
    lone = "\ud800"
    requests: list[tuple[str, str, bytes]] = [
        (
            "POST",
            f"{base}/flows",
            evil
            or _with_lone_surrogate(
                {"name": "x", "graph": hook_graph()}, lambda v: v.update(name=lone)
            ),
        ),
        (
            "PATCH",
            f"{base}/flows/{flow_id}",
            evil
            or _with_lone_surrogate(
                {"graph": _graph_with("x")},
                lambda v: v["graph"]["nodes"][1]["config"]["values"].update(hostile=lone),
            ),
        ),
        (
            "POST",
            f"{base}/credentials",
            evil
            or _with_lone_surrogate(
                {"name": "k", "kind": "openai", "secret": {"api_key": "sk-x"}},
                lambda v: v["secret"].update(api_key=f"sk-{lone}"),
            ),
        ),
        (
            "POST",
            "/api/workspaces",
            evil or _with_lone_surrogate({"name": "w"}, lambda v: v.update(name=lone)),
        ),
    ]
    tables = (Flow, Workspace, Credential, User, WebhookEvent)
    before = [await _count(db, table) for table in tables]
    for method, url, body in requests:
        answer = await http.request(
            method,
            url,
            content=body,
            headers={**team.editor.headers, "Content-Type": "application/json"},
        )
        _assert_refused(answer, code, f"{method} {url} {case}")
    # sign-up is a fastapi-users route: the same edge applies
    signup = evil or _with_lone_surrogate(
        {"email": "lone@example.com", "password": "correct horse battery"},
        lambda v: v.update(password=f"pw{lone}pw-long-enough"),
    )
    answer = await http.post(
        "/api/auth/register", content=signup, headers={"Content-Type": "application/json"}
    )
    _assert_refused(answer, code, f"register {case}")
    assert [await _count(db, table) for table in tables] == before
    graph = await http.get(f"{base}/flows/{flow_id}", headers=team.editor.headers)
    assert graph.status_code == 200 and "hostile" not in graph.text
