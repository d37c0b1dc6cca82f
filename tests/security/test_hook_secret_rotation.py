"""A webhook secret that was rotated, or a flow that was paused, stops being accepted: at once in
the process that made the change, within milliseconds in others (NOTIFY), and never later than
the trigger cache's bound (TRIGGER_TTL_SECONDS) even when no notification arrives."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from socialflow.api.hooks import signing
from socialflow.orchestration import TRIGGER_CHANNEL, TRIGGER_TTL_SECONDS, TriggerCache
from tests.api.conftest import Team
from tests.api.test_hooks import publish_hook


async def post(client: httpx.AsyncClient, flow_id: str, secret: str) -> int:
    body = b'{"n": 1}'
    headers = {**signing.sign(secret, body), "content-type": "application/json"}
    return (await client.post(f"/hooks/{flow_id}", content=body, headers=headers)).status_code


@pytest.mark.prefect
async def test_a_rotated_secret_is_refused_at_once_and_the_new_one_accepted(
    client: httpx.AsyncClient, team: Team
) -> None:
    flow_id, info = await publish_hook(client, team, auth="hmac_sha256")
    old = info["secret"]
    assert await post(client, flow_id, old) == 202  # now in this process's cache
    path = f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/webhook/secret"
    assert (await client.post(path, headers=team.viewer.headers)).status_code == 403
    other = f"/api/workspaces/{team.other_workspace_id}/flows/{flow_id}/webhook/secret"
    assert (await client.post(other, headers=team.outsider.headers)).status_code == 404
    rotated = await client.post(path, headers=team.editor.headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and len(new) >= 32
    assert await post(client, flow_id, old) == 401
    assert await post(client, flow_id, new) == 202
    info_now = await client.get(
        f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/webhook", headers=team.editor.headers
    )
    assert info_now.json()["secret"] == new
    paused = await client.post(
        f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/pause", headers=team.editor.headers
    )
    assert paused.status_code == 200, paused.text
    assert await post(client, flow_id, new) == 404


async def change_elsewhere(app: Any, flow_id: str, *, notify: bool) -> None:
    """Pause the flow the way another API process's commit looks from here: a row changed
    by another connection, with or without its NOTIFY."""
    dsn = app.state.db.url.replace("postgresql+psycopg://", "postgresql://", 1)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute(
            "UPDATE flow_trigger SET active = false WHERE flow_id = %s", (uuid.UUID(flow_id),)
        )
        if notify:
            await conn.execute("SELECT pg_notify(%s, %s)", (TRIGGER_CHANNEL, flow_id))
        await conn.commit()


async def refused_after(client: httpx.AsyncClient, flow_id: str, secret: str, limit: float):
    started = time.monotonic()
    while await post(client, flow_id, secret) == 202:
        assert time.monotonic() - started < limit, f"still accepted after {limit} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_another_process_change_arrives_by_notify(
    app: Any, client: httpx.AsyncClient, team: Team
) -> None:
    # an entry that would live ten minutes: only the notification can end it early
    await app.state.triggers.close()  # the app's own, replaced by one that keeps entries long
    app.state.triggers = TriggerCache(app.state.db, app.state.settings, ttl=600)
    await app.state.triggers.start()
    try:
        flow_id, info = await publish_hook(client, team, auth="hmac_sha256")
        assert await post(client, flow_id, info["secret"]) == 202
        await asyncio.sleep(0.2)  # the listener is connected
        await change_elsewhere(app, flow_id, notify=True)
        await refused_after(client, flow_id, info["secret"], limit=5)
    finally:
        await app.state.triggers.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_without_a_notification_the_age_bound_holds(
    app: Any, client: httpx.AsyncClient, team: Team
) -> None:
    assert TRIGGER_TTL_SECONDS <= 2.0  # the bound the docs state
    ttl = 0.5
    await app.state.triggers.close()
    app.state.triggers = TriggerCache(app.state.db, app.state.settings, ttl=ttl, listen=False)
    flow_id, info = await publish_hook(client, team, auth="hmac_sha256")
    assert await post(client, flow_id, info["secret"]) == 202
    await change_elsewhere(app, flow_id, notify=False)
    changed_at = time.monotonic()
    await refused_after(client, flow_id, info["secret"], limit=ttl + 1.5)
    # the entry may serve until it is ttl old, never after
    await asyncio.sleep(max(0.0, ttl - (time.monotonic() - changed_at)))
    assert await post(client, flow_id, info["secret"]) == 404
