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
from socialflow.instagram import build_comment, encode_body, sign_sha256
from socialflow.orchestration import WebhookEvent
from tests.api.conftest import Team, api_settings, make_team
from tests.api.test_hooks import hook_graph
from tests.api.test_instagram_webhooks import comment_graph

SECRET = "meta-app-secret-for-json-edge-tests"
DEPTH = 100_000
NESTED_ARRAYS = b"[" * DEPTH + b"]" * DEPTH
NESTED_OBJECTS = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH


def _with_text(valid: dict[str, Any], text_field: Callable[[Any], None]) -> bytes:
    """``valid`` after ``text_field`` put the hostile text in it, serialised as JSON (the text
    becomes a ``\\ud800`` or ``\\u0000`` escape)."""
    text_field(valid)
    return json.dumps(valid, ensure_ascii=True).encode()


#: what each case is: a whole body, or a text put into one field of an otherwise valid body
EVIL: dict[str, tuple[bytes | str, str]] = {
    "100k nested arrays": (NESTED_ARRAYS, "json_too_deep"),
    "100k nested objects": (NESTED_OBJECTS, "json_too_deep"),
    "lone surrogate": ("\ud800", "invalid_unicode"),
    # valid JSON and valid Unicode, but PostgreSQL (the app's, and Prefect's) cannot store it
    "NUL character": ("a\x00b", "invalid_unicode"),
}


def _instagram_comment_with(text: str) -> bytes:
    body = encode_body(build_comment("MARKER"))
    assert body.count(b"MARKER") == 1
    return body.replace(b"MARKER", json.dumps(f"price {text}")[1:-1].encode())


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


@pytest.mark.prefect
async def test_instagram_routes_refuse_hostile_json_with_a_valid_signature(
    edge: tuple[httpx.AsyncClient, Team], db: Database
) -> None:
    http, team = edge
    flow_id = await _publish(http, team, comment_graph())
    before = await _count(db, WebhookEvent)
    for case, (evil, code) in EVIL.items():
        body = evil if isinstance(evil, bytes) else _instagram_comment_with(evil)
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


@pytest.mark.prefect
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
        "UTF-8-encoded surrogate bytes": (b'{"n": "\xed\xa0\x80"}', "invalid_unicode"),
    }
    before = await _count(db, WebhookEvent)
    for case, (evil, code) in cases.items():
        body = (
            evil
            if isinstance(evil, bytes)
            else _with_text({"order": {"note": ""}}, lambda v, t=evil: v["order"].update(note=t))
        )
        answer = await http.post(f"/hooks/{flow_id}", content=body, headers=headers_for(body))
        _assert_refused(answer, code, case)
    assert await _count(db, WebhookEvent) == before
    form = b"note=a%00b"
    nul_form = await http.post(
        f"/hooks/{flow_id}",
        content=form,
        headers={**headers_for(form), "Content-Type": "application/x-www-form-urlencoded"},
    )
    _assert_refused(nul_form, "invalid_unicode", "a NUL in a form body")
    assert await _count(db, WebhookEvent) == before
    fine = json.dumps({"order": {"note": "ok \U0001f600"}}, ensure_ascii=True).encode()
    accepted = await http.post(f"/hooks/{flow_id}", content=fine, headers=headers_for(fine))
    assert accepted.status_code == 202, accepted.text
    assert await _count(db, WebhookEvent) == before + 1


def _graph_with(config_value: Any) -> dict[str, Any]:
    graph = hook_graph()
    graph["nodes"][1]["config"]["values"]["hostile"] = config_value
    return graph


@pytest.mark.prefect
async def test_api_routes_refuse_hostile_json(
    edge: tuple[httpx.AsyncClient, Team], db: Database
) -> None:
    http, team = edge
    flow_id = await _publish(http, team, hook_graph())
    tables = (Flow, Workspace, Credential, User, WebhookEvent)
    before = [await _count(db, table) for table in tables]
    for case, (evil, code) in EVIL.items():
        for method, url, body in _api_requests(team, flow_id, evil):
            headers = {"Content-Type": "application/json"}
            if not url.startswith("/api/auth/"):
                headers.update(team.editor.headers)
            answer = await http.request(method, url, content=body, headers=headers)
            _assert_refused(answer, code, f"{method} {url} {case}")
    assert [await _count(db, table) for table in tables] == before
    graph = await http.get(
        f"/api/workspaces/{team.workspace_id}/flows/{flow_id}", headers=team.editor.headers
    )
    assert graph.status_code == 200 and "hostile" not in graph.text


def _api_requests(team: Team, flow_id: str, evil: bytes | str) -> list[tuple[str, str, bytes]]:
    """A flow, a graph, a credential, a workspace and a sign-up (a fastapi-users route), each
    valid but for the hostile body or text."""
    base = f"/api/workspaces/{team.workspace_id}"

    def body(valid: dict[str, Any], put: Callable[[Any, str], None]) -> bytes:
        return evil if isinstance(evil, bytes) else _with_text(valid, lambda v: put(v, evil))

    def hostile_config(v: Any, t: str) -> None:
        v["graph"]["nodes"][1]["config"]["values"].update(hostile=t)

    return [
        (
            "POST",
            f"{base}/flows",
            body({"name": "x", "graph": hook_graph()}, lambda v, t: v.update(name=t)),
        ),
        ("PATCH", f"{base}/flows/{flow_id}", body({"graph": _graph_with("x")}, hostile_config)),
        (
            "POST",
            f"{base}/credentials",
            body(
                {"name": "k", "kind": "openai", "secret": {"api_key": "sk-x"}},
                lambda v, t: v["secret"].update(api_key=f"sk-{t}"),
            ),
        ),
        ("POST", "/api/workspaces", body({"name": "w"}, lambda v, t: v.update(name=t))),
        (
            "POST",
            "/api/auth/register",
            body(
                {"email": "hostile@example.com", "password": "correct horse battery"},
                lambda v, t: v.update(password=f"correct horse {t} battery"),
            ),
        ),
    ]
