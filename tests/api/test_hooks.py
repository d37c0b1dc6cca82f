"""The generic webhook trigger: authenticated, size-limited, stored before the answer, run once."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from socialflow.api.hooks import signing
from socialflow.orchestration import EngineRuntime, FlowExecution, NodeRun, WebhookEvent, Worker
from tests.api.conftest import Team
from tests.fixtures.flows import FOUR_NODES


def hook_graph(**trigger_config: Any) -> dict[str, Any]:
    graph = json.loads(json.dumps(FOUR_NODES))
    graph["nodes"][0]["config"] = trigger_config
    return graph


def one_step_hook_graph() -> dict[str, Any]:
    """The webhook trigger and one node: for tests about how often a flow runs, not what it
    does, where every further node is one more Prefect task run per event."""
    graph = hook_graph()
    graph["nodes"] = graph["nodes"][:2]
    graph["edges"] = graph["edges"][:1]
    return graph


async def publish_hook(
    client: httpx.AsyncClient,
    team: Team,
    graph: dict[str, Any] | None = None,
    **trigger_config: Any,
) -> tuple[str, dict[str, Any]]:
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await client.post(
        base,
        json={"name": "Hook", "graph": graph or hook_graph(**trigger_config)},
        headers=team.editor.headers,
    )
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    assert (
        await client.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    ).status_code == 201
    info = await client.get(f"{base}/{flow_id}/webhook", headers=team.editor.headers)
    assert info.status_code == 200, info.text
    return flow_id, info.json()


async def events_of(runtime: EngineRuntime, flow_id: str) -> int:
    async with runtime.db.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.flow_id == uuid.UUID(flow_id))
            )
            or 0
        )


@pytest.mark.prefect
async def test_webhook_info_is_for_editors_of_the_workspace(
    client: httpx.AsyncClient, team: Team
) -> None:
    flow_id, info = await publish_hook(client, team)
    assert info["url"].endswith(f"/hooks/{flow_id}")
    assert info["auth"] == "header" and len(info["secret"]) >= 32
    path = f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/webhook"
    assert (await client.get(path, headers=team.viewer.headers)).status_code == 403
    assert (await client.get(path, headers=team.outsider.headers)).status_code == 404
    other = f"/api/workspaces/{team.other_workspace_id}/flows/{flow_id}/webhook"
    assert (await client.get(other, headers=team.outsider.headers)).status_code == 404


async def test_bad_requests_answer_4xx_and_store_nothing(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    flow_id, info = await publish_hook(client, team)
    url, good = f"/hooks/{flow_id}", {"X-Socialflow-Secret": info["secret"]}
    cases = [
        ("no secret", {}, b'{"n": 1}', "application/json", 401, "webhook_unauthorized"),
        (
            "wrong secret",
            {"X-Socialflow-Secret": "nope"},
            b'{"n": 1}',
            "application/json",
            401,
            "webhook_unauthorized",
        ),
        ("malformed json", good, b'{"n": ', "application/json", 400, "malformed_body"),
        ("not json or form", good, b"<xml/>", "application/xml", 415, "unsupported_media_type"),
        (
            "oversized",
            good,
            b'{"n": "' + b"x" * 1_100_000 + b'"}',
            "application/json",
            413,
            "payload_too_large",
        ),
    ]
    for label, headers, body, content_type, status, code in cases:
        answer = await client.post(
            url, content=body, headers={**headers, "content-type": content_type}
        )
        assert answer.status_code == status, f"{label}: {answer.status_code} {answer.text[:200]}"
        assert answer.json()["code"] == code, label
    assert (await client.get(url, headers=good)).status_code == 405
    assert (await client.post(f"/hooks/{uuid.uuid4()}", json={}, headers=good)).status_code == 404
    assert await events_of(runtime, flow_id) == 0


async def test_hmac_signature_and_form_bodies(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    flow_id, info = await publish_hook(client, team, auth="hmac_sha256", include_headers=["X-Shop"])
    body = b"n=4&sku=mug"
    signed = signing.sign(info["secret"], body)
    headers = {"content-type": "application/x-www-form-urlencoded", "X-Shop": "acme"}
    refused = await client.post(
        f"/hooks/{flow_id}",
        content=body,
        headers={**headers, **signed, "X-Socialflow-Signature": "sha256=00"},
    )
    assert refused.status_code == 401
    accepted = await client.post(
        f"/hooks/{flow_id}?src=test", content=body, headers={**headers, **signed}
    )
    assert accepted.status_code == 202, accepted.text
    async with runtime.db.sessionmaker() as session:
        event = await session.get(WebhookEvent, uuid.UUID(accepted.json()["event_id"]))
    assert event is not None
    assert event.payload == {
        "method": "POST",
        "body": {"n": "4", "sku": "mug"},
        "query": {"src": "test"},
        "headers": {"x-shop": "acme"},
    }
    assert event.raw_body == body


@pytest.mark.timeout(1200)  # 900 Prefect flow runs take minutes on a 2-core machine
async def test_concurrent_posts_with_duplicates_run_exactly_once_each(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime, database_url: str
) -> None:
    flow_id, info = await publish_hook(client, team, one_step_hook_graph())
    headers = {"X-Socialflow-Secret": info["secret"]}
    # the full 1,000 (100 duplicates) on PostgreSQL; a fifth of it on SQLite, where every run
    # costs the same Prefect server time and the suite must stay within its budget
    total, duplicates = (1000, 100) if database_url.startswith("postgresql") else (200, 20)

    async def post(i: int) -> httpx.Response:
        key = f"delivery-{i % (total - duplicates)}"  # the last 20 repeat earlier keys
        return await client.post(
            f"/hooks/{flow_id}",
            json={"n": i % (total - duplicates)},
            headers={**headers, "Idempotency-Key": key},
        )

    answers = await asyncio.gather(*(post(i) for i in range(total)))
    assert all(a.status_code == 202 for a in answers), {a.status_code for a in answers}
    assert sum(a.json()["duplicate"] for a in answers) == duplicates
    assert await events_of(runtime, flow_id) == total - duplicates

    worker = Worker(runtime, concurrency=8, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 900
        while True:
            async with runtime.db.sessionmaker() as session:
                done = await session.scalar(
                    select(func.count())
                    .select_from(FlowExecution)
                    .where(
                        FlowExecution.flow_id == uuid.UUID(flow_id),
                        FlowExecution.status == "completed",
                    )
                )
            if done == total - duplicates:
                break
            assert asyncio.get_running_loop().time() < deadline, f"only {done} runs completed"
            await asyncio.sleep(0.25)
    finally:
        stop.set()
        await task
    async with runtime.db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(FlowExecution.trigger_event_id, func.count())
                .where(FlowExecution.flow_id == uuid.UUID(flow_id))
                .group_by(FlowExecution.trigger_event_id)
            )
        ).all()
    assert len(rows) == total - duplicates and all(n == 1 for _, n in rows)


async def test_run_now_test_run_and_rerun(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await client.post(
        base, json={"name": "Manual", "graph": FOUR_NODES}, headers=team.editor.headers
    )
    flow_id = created.json()["id"]
    never = await client.post(
        f"{base}/{flow_id}/run", json={"payload": {}}, headers=team.editor.headers
    )
    assert never.status_code == 409 and never.json()["code"] == "flow_not_published"
    tested = await client.post(
        f"{base}/{flow_id}/test", json={"payload": {"body": {"n": 2}}}, headers=team.editor.headers
    )
    assert tested.status_code == 202 and tested.json()["sandbox"] is True
    assert (
        await client.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    ).status_code == 201
    ran = await client.post(
        f"{base}/{flow_id}/run", json={"payload": {"body": {"n": 3}}}, headers=team.editor.headers
    )
    assert ran.status_code == 202 and ran.json()["sandbox"] is False
    denied = await client.post(
        f"{base}/{flow_id}/run", json={"payload": {}}, headers=team.viewer.headers
    )
    assert denied.status_code == 403

    worker = Worker(runtime, concurrency=2, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        ids = [tested.json()["execution_id"], ran.json()["execution_id"]]
        await _until_completed(client, team, ids)
        rerun = await client.post(
            f"/api/workspaces/{team.workspace_id}/executions/{ids[1]}/rerun",
            json={"version": "active"},
            headers=team.editor.headers,
        )
        assert rerun.status_code == 202, rerun.text
        await _until_completed(client, team, [rerun.json()["execution_id"]])
    finally:
        stop.set()
        await task
    test_run = (
        await client.get(
            f"/api/workspaces/{team.workspace_id}/executions/{ids[0]}", headers=team.viewer.headers
        )
    ).json()
    assert test_run["sandbox"] is True
    assert {n["node_id"]: n["status"] for n in test_run["node_runs"]}["even"] == "completed"
    again = (
        await client.get(
            f"/api/workspaces/{team.workspace_id}/executions/{rerun.json()['execution_id']}",
            headers=team.viewer.headers,
        )
    ).json()
    original = (
        await client.get(
            f"/api/workspaces/{team.workspace_id}/executions/{ids[1]}", headers=team.viewer.headers
        )
    ).json()
    assert again["flow_version_id"] == original["flow_version_id"]
    assert {n["node_id"]: n["status"] for n in again["node_runs"]}[
        "even"
    ] == "skipped"  # n=3 is odd

    # run now and the re-run are events of the log, each linked to its run; a test run is not
    log = (
        await client.get(
            f"/api/workspaces/{team.workspace_id}/events",
            params={"flow_id": flow_id, "source": "manual"},
            headers=team.viewer.headers,
        )
    ).json()
    linked = {flow["execution_id"] for item in log["items"] for flow in item["flows"]}
    assert linked == {ids[1], rerun.json()["execution_id"]}
    assert {item["outcome"] for item in log["items"]} == {"ran"}
    assert {item["kind"] for item in log["items"]} == {"manual"}


async def _until_completed(client: httpx.AsyncClient, team: Team, ids: list[str]) -> None:
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        states = [
            (
                await client.get(
                    f"/api/workspaces/{team.workspace_id}/executions/{i}",
                    headers=team.viewer.headers,
                )
            )
            .json()
            .get("status")
            for i in ids
        ]
        if all(s == "completed" for s in states):
            return
        assert not {"failed", "crashed", "cancelled"} & set(states), states
        assert asyncio.get_running_loop().time() < deadline, states
        await asyncio.sleep(0.2)


async def test_a_rerun_runs_the_same_or_the_active_version_with_the_original_payload(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    """Version 1 runs; version 2 (whose "greet" node also sets ``v``) is published; re-runs of
    the version-1 execution run version 1 (``same``, also the default) or version 2
    (``active``), each with the original trigger payload."""
    base = f"/api/workspaces/{team.workspace_id}/flows"
    executions = f"/api/workspaces/{team.workspace_id}/executions"
    created = await client.post(
        base, json={"name": "Versions", "graph": FOUR_NODES}, headers=team.editor.headers
    )
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    first = await client.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    assert first.status_code == 201, first.text
    payload = {"body": {"n": 4}, "query": {"src": "manual"}}
    ran = await client.post(
        f"{base}/{flow_id}/run", json={"payload": payload}, headers=team.editor.headers
    )
    assert ran.status_code == 202, ran.text
    original_id = ran.json()["execution_id"]
    graph = json.loads(json.dumps(FOUR_NODES))
    graph["nodes"][1]["config"]["values"]["v"] = "two"
    changed = await client.patch(
        f"{base}/{flow_id}", json={"graph": graph}, headers=team.editor.headers
    )
    assert changed.status_code == 200, changed.text
    second = await client.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    assert second.status_code == 201, second.text
    assert (first.json()["number"], second.json()["number"]) == (1, 2)

    worker = Worker(runtime, concurrency=3, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await _until_completed(client, team, [original_id])
        reruns: dict[str, str] = {}
        for label, body in (
            ("same", {"version": "same"}),
            ("active", {"version": "active"}),
            ("default", None),
        ):
            answer = await client.post(
                f"{executions}/{original_id}/rerun", json=body, headers=team.editor.headers
            )
            assert answer.status_code == 202, f"{label}: {answer.text}"
            reruns[label] = answer.json()["execution_id"]
        refused = await client.post(
            f"{executions}/{original_id}/rerun",
            json={"version": "newest"},
            headers=team.editor.headers,
        )
        assert refused.status_code == 422 and "version" in refused.text
        await _until_completed(client, team, list(reruns.values()))
    finally:
        stop.set()
        await task

    async with runtime.db.sessionmaker() as session:
        rows = {
            label: await session.get(FlowExecution, uuid.UUID(execution_id))
            for label, execution_id in {"original": original_id, **reruns}.items()
        }
        greet = {
            label: await session.scalar(
                select(NodeRun.output).where(
                    NodeRun.execution_id == row.id, NodeRun.node_id == "greet"
                )
            )
            for label, row in rows.items()
            if row is not None
        }
    assert all(row is not None for row in rows.values())
    versions = {
        label: (str(row.flow_version_id), row.version_number)
        for label, row in rows.items()
        if row is not None
    }
    v1, v2 = (first.json()["id"], 1), (second.json()["id"], 2)
    assert versions == {"original": v1, "same": v1, "default": v1, "active": v2}
    payloads = {label: row.trigger_payload for label, row in rows.items() if row is not None}
    assert payloads == dict.fromkeys(rows, payload)
    # what ran is each version's graph, not only its label on the row
    assert greet == {
        "original": {"out": {"n": 4}},
        "same": {"out": {"n": 4}},
        "default": {"out": {"n": 4}},
        "active": {"out": {"n": 4, "v": "two"}},
    }
    assert len({original_id, *reruns.values()}) == 4


@pytest.mark.prefect
async def test_the_webhook_url_is_built_from_the_public_base_url(
    app: Any, client: httpx.AsyncClient, team: Team
) -> None:
    from socialflow.core.settings import ApiSettings

    # served on another port, no public URL configured: the URL names that port
    app.state.settings.api = ApiSettings(port=8123)
    flow_id, info = await publish_hook(client, team)
    assert info["url"] == f"http://127.0.0.1:8123/hooks/{flow_id}"
    # behind a proxy, under a path: the configured public URL, without a doubled slash
    app.state.settings.api = ApiSettings(port=8123, public_url="https://flows.example.com/sf/")
    path = f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/webhook"
    info = (await client.get(path, headers=team.editor.headers)).json()
    assert info["url"] == f"https://flows.example.com/sf/hooks/{flow_id}"
