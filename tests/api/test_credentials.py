"""Workspace credentials: sealed at rest, never shown, resolved only for their own workspace."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select, text, update

from socialflow.api.app import create_app
from socialflow.api.workspaces.models import Workspace
from socialflow.core.credentials import (
    Credential,
    DatabaseCredentialResolver,
    key_wrapper,
    open_credential,
    parse_secret,
    rotate_master_key,
    seal_credential,
)
from socialflow.core.crypto import DecryptionError, LocalKeyWrapper
from socialflow.core.db import Database
from socialflow.core.errors import UserError
from socialflow.migrations import upgrade
from tests.api.conftest import Team, api_settings, make_team

ROOT = Path(__file__).resolve().parents[2]


def master_key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


KEY_A = master_key("a")
KEY_B = master_key("b")


def new_secret(prefix: str = "sk-test-") -> str:
    return prefix + secrets.token_urlsafe(24)


def base(team: Team, workspace_id: str | None = None) -> str:
    return f"/api/workspaces/{workspace_id or team.workspace_id}/credentials"


async def create(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    name: str | None = None,
    kind: str = "openai",
    secret: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = {
        "name": name or f"cred-{uuid.uuid4().hex[:8]}",
        "kind": kind,
        "secret": secret if secret is not None else {"api_key": new_secret()},
    }
    answer = await client.post(url, json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def forms_of(value: str) -> list[bytes]:
    """A secret as it could leak: raw, base64 (padded or not, standard or URL-safe), hex."""
    raw = value.encode()
    encoded = [base64.b64encode(raw), base64.urlsafe_b64encode(raw)]
    return [raw, raw.hex().encode(), *encoded, *(e.rstrip(b"=") for e in encoded)]


def assert_absent(value: str, haystack: bytes | str, where: str) -> None:
    blob = haystack if isinstance(haystack, bytes) else haystack.encode()
    for form in forms_of(value):
        assert form not in blob, f"the secret appears in {where}"


async def raw_credential_rows(db: Database) -> list[dict[str, Any]]:
    async with db.engine.connect() as connection:
        result = await connection.execute(text("SELECT * FROM credential"))
        return [dict(row._mapping) for row in result]


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


async def test_the_secret_never_appears_in_answers_logs_or_the_database(
    client: httpx.AsyncClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    team = await make_team(client)
    admin = team.admin.headers
    api_key, replacement, password = new_secret(), new_secret(), new_secret("pw-")

    created = await client.post(
        base(team),
        json={"name": "OpenAI prod", "kind": "openai", "secret": {"api_key": api_key}},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    shown = created.json()
    assert set(shown) == {"id", "name", "kind", "hint", "key_id", "created_at", "updated_at"}
    assert shown["hint"] == "••••" + api_key[-4:]
    assert shown["key_id"] == "dev"
    url = f"{base(team)}/{shown['id']}"
    editor, openai = team.editor.headers, {"name": "OpenAI live", "kind": "openai"}
    basic = {
        "name": "Basic",
        "kind": "http-basic",
        "secret": {"username": "u", "password": password},
    }
    calls: list[tuple[str, str, Any, dict[str, str], int]] = [
        ("POST", base(team), basic, admin, 201),
        ("GET", base(team), None, editor, 200),
        ("GET", url, None, editor, 200),
        ("PATCH", url, {"name": "OpenAI live"}, admin, 200),
        ("PATCH", url, {"secret": {"api_key": replacement}}, admin, 200),
        # refused requests carrying a secret do not echo it either
        ("POST", base(team), {**openai, "secret": {"api_key": api_key}}, admin, 409),
        ("POST", base(team), {**openai, "name": "typo", "secret": {"apikey": api_key}}, admin, 422),
        ("PATCH", url, {"secret": {"api_key": api_key, "x": api_key}}, admin, 422),
        ("POST", base(team), {"name": "no kind", "secret": api_key}, admin, 422),
    ]
    answers = [created]
    for method, target, body, headers, status in calls:
        answer = await client.request(method, target, json=body, headers=headers)
        assert answer.status_code == status, (method, target, answer.text)
        answers.append(answer)
    assert answers[5].json()["hint"] == "••••" + replacement[-4:]

    for value in (api_key, replacement, password):
        for answer in answers:
            assert_absent(value, answer.content, f"the answer to {answer.request.url}")
            assert_absent(value, str(answer.headers), "answer headers")
        for row in await raw_credential_rows(db):
            for column, stored in row.items():
                assert_absent(value, as_bytes(stored), f"column credential.{column}")
        for record in caplog.records:
            assert_absent(value, record.getMessage(), f"log line {record.name}")
            assert_absent(value, repr(record.__dict__), f"log record {record.name}")
        assert_absent(value, caplog.text, "the captured log")
    # the capture did see the credential endpoints at work
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "credential created" in messages and "credential updated" in messages


async def test_the_resolver_opens_only_its_own_workspaces_credentials(
    app: Any, client: httpx.AsyncClient, team: Team, db: Database
) -> None:
    ours, theirs = new_secret(), new_secret()
    llm = {"api_key": ours, "base_url": "https://llm.example/v1"}
    mine = await create(client, base(team), team.admin.headers, name="LLM", secret=llm)
    elsewhere = base(team, team.other_workspace_id)
    other = await create(client, elsewhere, team.outsider.headers, secret={"api_key": theirs})
    wrapper = key_wrapper(app.state.settings)
    resolver = DatabaseCredentialResolver(db, wrapper, uuid.UUID(team.workspace_id))
    outsider = DatabaseCredentialResolver(db, wrapper, uuid.UUID(team.other_workspace_id))

    assert await resolver.get("openai") == await resolver.get("openai", name="LLM") == llm
    assert await outsider.get("openai") == {"api_key": theirs}
    for attempt in (outsider.get("openai", name="LLM"), resolver.get("anthropic")):
        with pytest.raises(UserError) as missing:
            await attempt
        assert missing.value.code == "credential_missing"
        assert "no credential of kind" in missing.value.message

    await create(client, base(team), team.admin.headers, name="Backup LLM")
    with pytest.raises(UserError) as ambiguous:
        await resolver.get("openai")
    assert ambiguous.value.code == "credential_missing"
    assert "'Backup LLM', 'LLM'" in ambiguous.value.message
    assert (await resolver.get("openai", name="LLM"))["api_key"] == ours

    # a ciphertext copied into another workspace's row does not open there
    async with db.session() as session:
        source = await session.get(Credential, uuid.UUID(mine["id"]))
        assert source is not None
        await session.execute(
            update(Credential)
            .where(Credential.id == uuid.UUID(other["id"]))
            .values(
                ciphertext=source.ciphertext, wrapped_key=source.wrapped_key, key_id=source.key_id
            )
        )
    with pytest.raises(DecryptionError):
        await outsider.get("openai")


async def test_roles_decide_who_lists_and_who_manages(
    client: httpx.AsyncClient, team: Team
) -> None:
    url = base(team)
    body = {"name": "Pinecone", "kind": "pinecone", "secret": {"api_key": new_secret()}}
    viewer, editor, admin = team.viewer.headers, team.editor.headers, team.admin.headers

    assert (await client.get(url, headers=viewer)).status_code == 403
    assert (await client.post(url, json=body, headers=viewer)).status_code == 403
    refused = await client.post(url, json=body, headers=editor)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden" and "admin" in refused.json()["message"]

    created = await client.post(url, json=body, headers=admin)
    assert created.status_code == 201
    one = f"{url}/{created.json()['id']}"
    assert (await client.get(one, headers=viewer)).status_code == 403
    listed = await client.get(url, headers=editor)
    assert [c["name"] for c in listed.json()] == ["Pinecone"]
    assert (await client.get(one, headers=editor)).json()["kind"] == "pinecone"
    assert (await client.patch(one, json={"name": "x"}, headers=editor)).status_code == 403
    assert (await client.delete(one, headers=editor)).status_code == 403

    outsider = team.outsider.headers
    for method, target in (("GET", url), ("POST", url), ("GET", one), ("PATCH", one)):
        answer = await client.request(method, target, json=body, headers=outsider)
        assert answer.status_code == 404, (method, target)
        assert answer.json()["code"] == "workspace_not_found"
    assert (await client.delete(one, headers=outsider)).status_code == 404

    # a credential of another workspace is not found through this one, even by its admin
    theirs = await create(client, base(team, team.other_workspace_id), outsider, kind="pinecone")
    through_ours = f"{url}/{theirs['id']}"
    for method in ("GET", "PATCH", "DELETE"):
        answer = await client.request(method, through_ours, json={"name": "mine"}, headers=admin)
        assert answer.status_code == 404, method
        assert answer.json()["code"] == "credential_not_found"
    mine_through_theirs = f"{base(team, team.other_workspace_id)}/{created.json()['id']}"
    assert (await client.get(mine_through_theirs, headers=outsider)).status_code == 404

    assert (await client.delete(one, headers=admin)).status_code == 204
    assert (await client.get(one, headers=admin)).json()["code"] == "credential_not_found"
    assert (await client.get(url, headers=admin)).json() == []


async def test_names_are_unique_per_workspace(client: httpx.AsyncClient, team: Team) -> None:
    first = await create(client, base(team), team.admin.headers, name="Main")
    second = await create(client, base(team), team.admin.headers, name="Spare")
    duplicate = await client.post(
        base(team),
        json={"name": "Main", "kind": "anthropic", "secret": {"api_key": new_secret()}},
        headers=team.admin.headers,
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "credential_name_taken"
    assert "'Main'" in duplicate.json()["message"]
    renamed = await client.patch(
        f"{base(team)}/{second['id']}", json={"name": "Main"}, headers=team.admin.headers
    )
    assert renamed.status_code == 409
    # the same name in another workspace is fine, and renaming to one's own name is a no-op
    await create(client, base(team, team.other_workspace_id), team.outsider.headers, name="Main")
    same = await client.patch(
        f"{base(team)}/{first['id']}", json={"name": "Main"}, headers=team.admin.headers
    )
    assert same.status_code == 200


async def test_invalid_input_names_the_field_and_what_is_allowed(
    client: httpx.AsyncClient, team: Team
) -> None:
    admin = team.admin.headers

    async def problems(method: str, url: str, body: Any) -> dict[str, str]:
        answer = await client.request(method, url, json=body, headers=admin)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "validation_error"
        return {p["field"]: p["message"] for p in answer.json()["details"]["problems"]}

    missing = await problems("POST", base(team), {"name": "a", "kind": "s3", "secret": {}})
    assert missing == {
        "body.secret.access_key_id": "required for kind s3",
        "body.secret.secret_access_key": "required for kind s3",
    }
    unknown = await problems(
        "POST", base(team), {"name": "a", "kind": "anthropic", "secret": {"token": "t"}}
    )
    assert "anthropic takes api_key (required)" in unknown["body.secret.token"]
    assert "body.secret.api_key" in unknown
    bad_kind = await problems("POST", base(team), {"name": "", "kind": "ftp", "secret": {"a": 1}})
    assert set(bad_kind) == {"body.name", "body.kind"}  # the fields are not checked against no kind
    assert "'instagram'" in bad_kind["body.kind"] and "'s3'" in bad_kind["body.kind"]

    created = await create(client, base(team), admin, kind="http-header", secret=HEADER)
    url = f"{base(team)}/{created['id']}"
    assert await problems("PATCH", url, {}) == {
        "body": "Value error, give a new name, new secret fields, or both"
    }
    wrong_kind = await problems("PATCH", url, {"secret": {"api_key": "k"}})
    assert wrong_kind["body.secret.header_name"] == "required for kind http-header"
    assert "http-header takes header_name" in wrong_kind["body.secret.api_key"]
    header = await problems("PATCH", url, {"secret": {"header_name": "X Key", "header_value": "v"}})
    assert "letters, digits" in header["body.secret.header_name"]
    unknown_field = await problems("PATCH", url, {"name": "n", "kind": "openai"})
    assert "body.kind" in unknown_field


HEADER = {"header_name": "X-Api-Key", "header_value": "value-of-the-header-0001"}


async def test_replacing_the_secret_reseals_it_under_a_fresh_data_key(
    app: Any, client: httpx.AsyncClient, team: Team, db: Database
) -> None:
    created = await create(
        client, base(team), team.admin.headers, kind="http-header", secret=HEADER
    )
    assert created["hint"] == "••••0001"
    url = f"{base(team)}/{created['id']}"
    row_id = uuid.UUID(created["id"])

    async def stored() -> Credential:
        async with db.sessionmaker() as session:
            row = await session.scalar(select(Credential).where(Credential.id == row_id))
            assert row is not None
            return row

    before = await stored()
    renamed = await client.patch(url, json={"name": "Renamed"}, headers=team.admin.headers)
    assert renamed.json()["name"] == "Renamed"
    after_rename = await stored()
    assert after_rename.ciphertext == before.ciphertext
    assert after_rename.wrapped_key == before.wrapped_key

    short = {"header_name": "Authorization", "header_value": "Bearer x"}
    replaced = await client.patch(url, json={"secret": short}, headers=team.admin.headers)
    assert replaced.status_code == 200
    assert replaced.json()["hint"] == "••••"  # too short to show any of it
    assert replaced.json()["name"] == "Renamed"
    after_replace = await stored()
    assert after_replace.wrapped_key != before.wrapped_key
    assert after_replace.ciphertext != before.ciphertext
    wrapper = key_wrapper(app.state.settings)
    assert open_credential(after_replace, wrapper) == short

    only = await client.get(base(team), params={"kind": "http-header"}, headers=team.editor.headers)
    assert [c["id"] for c in only.json()] == [created["id"]]
    none = await client.get(base(team), params={"kind": "s3"}, headers=team.editor.headers)
    assert none.json() == []
    bad = await client.get(base(team), params={"kind": "ftp"}, headers=team.editor.headers)
    assert bad.status_code == 422


# --- master-key rotation --------------------------------------------------------------------


@pytest.fixture
async def fresh_db(database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own: rotation re-wraps every credential in the database."""
    if database_url.startswith("sqlite"):
        url, dropped = f"sqlite+aiosqlite:///{tmp_path / 'rotation.db'}", None
    else:
        dropped = f"socialflow_rotation_{uuid.uuid4().hex[:10]}"
        admin_dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{dropped}"')
        url = f"{database_url.rsplit('/', 1)[0]}/{dropped}"
    await upgrade(url)
    database = Database(url)
    yield database
    await database.dispose()
    if dropped:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)')


async def test_rotation_rewraps_every_credential_with_the_new_master_key(
    fresh_db: Database, test_registry: Any
) -> None:
    settings_a = api_settings(fresh_db.url, security={"master_keys": [KEY_A]})
    app = create_app(settings_a, db=fresh_db, registry=test_registry)
    kept: dict[str, dict[str, Any]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            team = await make_team(client)
            for _ in range(3):
                fields = {"api_key": new_secret()}
                made = await create(client, base(team), team.admin.headers, secret=fields)
                kept[made["id"]] = {"workspace": team.workspace_id, "fields": fields}
            fields = {"access_token": new_secret("IG-")}
            made = await create(
                client,
                base(team, team.other_workspace_id),
                team.outsider.headers,
                kind="instagram",
                secret=fields,
            )
            kept[made["id"]] = {"workspace": team.other_workspace_id, "fields": fields}
    before = {str(r["id"]): r for r in await raw_credential_rows(fresh_db)}
    assert {r["key_id"] for r in before.values()} == {"a"}

    # without the old key nothing can be re-wrapped, and nothing is changed
    with pytest.raises(DecryptionError, match="'a' is not configured"):
        await rotate_master_key(
            fresh_db, api_settings(fresh_db.url, security={"master_keys": [KEY_B]})
        )
    settings_ba = api_settings(fresh_db.url, security={"master_keys": [KEY_B, KEY_A]})
    assert await rotate_master_key(fresh_db, settings_ba) == 4
    assert await rotate_master_key(fresh_db, settings_ba) == 0

    after = {str(r["id"]): r for r in await raw_credential_rows(fresh_db)}
    for row_id, raw in after.items():
        assert raw["key_id"] == "b"
        assert as_bytes(raw["ciphertext"]) == as_bytes(before[row_id]["ciphertext"])
        assert as_bytes(raw["wrapped_key"]) != as_bytes(before[row_id]["wrapped_key"])
        assert raw["updated_at"] == before[row_id]["updated_at"]

    # key A can now be dropped from the settings: every secret still opens, for its workspace
    only_b = key_wrapper(api_settings(fresh_db.url, security={"master_keys": [KEY_B]}))
    for row_id, expected in kept.items():
        resolver = DatabaseCredentialResolver(fresh_db, only_b, uuid.UUID(expected["workspace"]))
        async with fresh_db.sessionmaker() as session:
            row = await session.get(Credential, uuid.UUID(row_id))
        assert row is not None
        assert open_credential(row, only_b) == expected["fields"]
        if row.kind == "instagram":
            assert await resolver.get("instagram") == expected["fields"]
    # and key A alone no longer opens anything
    stale = DatabaseCredentialResolver(
        fresh_db, LocalKeyWrapper([KEY_A]), uuid.UUID(team.other_workspace_id)
    )
    with pytest.raises(DecryptionError, match="'b' is not configured"):
        await stale.get("instagram")


async def test_cli_rotate_key_prints_the_count(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    await upgrade(url)
    db = Database(url)
    tokens = [new_secret(), new_secret()]
    try:
        async with db.session() as session:
            workspace = Workspace(name="CLI")
            session.add(workspace)
            await session.flush()
            for i, token in enumerate(tokens):
                row = Credential(workspace_id=workspace.id, name=f"key {i}", kind="anthropic")
                seal_credential(
                    row, parse_secret("anthropic", {"api_key": token}), LocalKeyWrapper([KEY_A])
                )
                session.add(row)
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "socialflow.cli", "credentials", "rotate-key"],
            cwd=ROOT,
            env={
                **os.environ,
                "SOCIALFLOW_DATABASE_URL": url,
                "SOCIALFLOW_SECURITY_MASTER_KEYS": json.dumps([KEY_B, KEY_A]),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr + result.stdout
        assert "re-wrapped 2 credential(s) with master key b" in result.stdout
        for token in tokens:
            assert_absent(token, result.stdout + result.stderr, "the command's output")
        only_b = LocalKeyWrapper([KEY_B])
        async with db.sessionmaker() as session:
            rows = list(await session.scalars(select(Credential).order_by(Credential.name)))
        assert [r.key_id for r in rows] == ["b", "b"]
        assert [open_credential(r, only_b)["api_key"] for r in rows] == tokens
    finally:
        await db.dispose()
