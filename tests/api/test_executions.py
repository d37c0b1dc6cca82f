"""Run history over REST (list, filters, detail, isolation) and the live WebSocket stream."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from socialflow.api.executions.service import prefect_ui_url
from socialflow.api.executions.ws import events_hub
from socialflow.core.credentials import Credential, key_wrapper, parse_secret, seal_credential
from socialflow.core.db import utcnow
from socialflow.core.settings import Settings
from socialflow.orchestration import (
    EngineRuntime,
    ExecutionEvent,
    ExecutionEvents,
    FlowExecution,
    GraphSpec,
    NodeEvent,
    NodeRun,
    RunMeta,
    start_graph_run,
)
from tests.api.conftest import PASSWORD, Team
from tests.fixtures.llm_server import ScriptedLLM, allowing_loopback, serve_llm
from tests.orchestration.test_usage import script_question, two_model_graph

CHAIN = GraphSpec.model_validate(
    {
        "nodes": [
            {"id": "t", "kind": "trigger.manual", "label": "Start"},
            {"id": "a", "kind": "test.sleep", "label": "First"},
            {"id": "b", "kind": "test.sleep", "label": "Second"},
        ],
        "edges": [
            {"source": "t", "source_port": "event", "target": "a"},
            {"source": "a", "target": "b"},
        ],
    }
)
SLOW = GraphSpec.model_validate(
    {
        "nodes": [
            {"id": "t", "kind": "trigger.manual"},
            {"id": "slow", "kind": "test.sleep", "config": {"seconds": 5.0}},
        ],
        "edges": [{"source": "t", "source_port": "event", "target": "slow"}],
    }
)


async def add_execution(
    db: Any,
    workspace_id: str | uuid.UUID,
    *,
    created_at: datetime,
    status: str = "completed",
    flow_id: uuid.UUID | None = None,
    flow_version_id: uuid.UUID | None = None,
    nodes: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> uuid.UUID:
    """Insert an execution row (and node runs) as a run would have left it."""
    execution_id = uuid.uuid4()
    async with db.session() as session:
        session.add(
            FlowExecution(
                id=execution_id,
                workspace_id=uuid.UUID(str(workspace_id)),
                flow_id=flow_id,
                flow_version_id=flow_version_id,
                flow_name="Seeded",
                trigger_kind="trigger.manual",
                status=status,
                created_at=created_at,
                started_at=created_at,
                finished_at=created_at + timedelta(seconds=2),
                **fields,
            )
        )
        await session.flush()
        for node in nodes or []:
            defaults = {"kind": "test.sleep", "version": 1, "status": "completed"}
            row = {**defaults, "label": node["node_id"], **node}
            session.add(NodeRun(execution_id=execution_id, **row))
    return execution_id


def executions_url(workspace_id: str, suffix: str = "") -> str:
    return f"/api/workspaces/{workspace_id}/executions{suffix}"


# --- REST ----------------------------------------------------------------------------------


async def test_list_filters_and_pages_newest_first(
    client: httpx.AsyncClient, team: Team, db: Any
) -> None:
    now = utcnow().replace(microsecond=0)
    flow_a, flow_b, v1, v2 = (uuid.uuid4() for _ in range(4))
    seeded = [
        (flow_a, v1, "completed", now - timedelta(hours=5)),
        (flow_a, v2, "failed", now - timedelta(hours=4)),
        (flow_b, None, "running", now - timedelta(hours=3)),
        (flow_a, v2, "completed", now - timedelta(hours=2)),
        (flow_b, None, "pending", now - timedelta(hours=1)),
    ]
    ids = [
        await add_execution(
            db, team.workspace_id, flow_id=f, flow_version_id=v, status=s, created_at=c
        )
        for f, v, s, c in seeded
    ]
    await add_execution(db, team.other_workspace_id, flow_id=flow_a, created_at=now)
    newest_first = [str(i) for i in reversed(ids)]

    async def listed(**params: Any) -> dict[str, Any]:
        answer = await client.get(
            executions_url(team.workspace_id), params=params, headers=team.viewer.headers
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    page = await listed()
    assert page["total"] == 5 and page["limit"] == 50 and page["offset"] == 0
    assert [e["id"] for e in page["items"]] == newest_first
    first = page["items"][-1]
    assert first["flow_name"] == "Seeded" and first["duration_ms"] == 2000
    assert "node_runs" not in first

    def ids_of(page: dict[str, Any]) -> list[str]:
        return [e["id"] for e in page["items"]]

    assert ids_of(await listed(flow_id=str(flow_a))) == [newest_first[i] for i in (1, 3, 4)]
    assert ids_of(await listed(flow_version_id=str(v2))) == [newest_first[i] for i in (1, 3)]
    assert ids_of(await listed(status="completed")) == [newest_first[i] for i in (1, 4)]
    assert ids_of(await listed(status=["running", "pending"])) == [newest_first[i] for i in (0, 2)]
    cut = now - timedelta(hours=3, minutes=30)
    assert ids_of(await listed(created_after=cut.isoformat())) == newest_first[:3]
    assert ids_of(await listed(created_before=cut.isoformat())) == newest_first[3:]
    naive = cut.replace(tzinfo=None).isoformat()  # no offset: read as UTC
    assert ids_of(await listed(created_after=naive)) == newest_first[:3]
    both = await listed(flow_id=str(flow_a), status="completed", created_after=cut.isoformat())
    assert ids_of(both) == [newest_first[1]]

    pages = [await listed(limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [ids_of(p) for p in pages] == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert {p["total"] for p in pages} == {5}
    assert (await listed(limit=2, offset=10))["items"] == []

    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"status": "sleeping"}):
        refused = await client.get(
            executions_url(team.workspace_id), params=bad, headers=team.viewer.headers
        )
        assert refused.status_code == 422, bad
        assert refused.json()["code"] == "validation_error"


async def test_detail_has_every_node_run_and_the_prefect_link(
    client: httpx.AsyncClient, team: Team, db: Any
) -> None:
    started = utcnow() - timedelta(minutes=5)
    flow_run, task_run = uuid.uuid4(), uuid.uuid4()
    execution_id = await add_execution(
        db,
        team.workspace_id,
        created_at=started,
        status="failed",
        prefect_flow_run_id=flow_run,
        error="node 'b' failed: boom",
        error_node_id="b",
        trigger_payload={"text": "hi"},
        nodes=[
            {
                "node_id": "a",
                "attempts": 1,
                "input": {"in": [1]},
                "output": {"truncated": True, "size": 900, "limit": 256, "preview": "{"},
                "output_truncated": True,
                "fired_ports": ["out"],
                "prefect_task_run_id": task_run,
                "started_at": started,
                "finished_at": started + timedelta(milliseconds=250),
            },
            {
                "node_id": "b",
                "status": "failed",
                "attempts": 3,
                "error": "boom",
                "error_code": "transient_error",
                "started_at": started + timedelta(seconds=1),
                "finished_at": started + timedelta(seconds=2),
            },
        ],
    )
    answer = await client.get(
        executions_url(team.workspace_id, f"/{execution_id}"), headers=team.viewer.headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    ui = os.environ["PREFECT_API_URL"].rstrip("/").removesuffix("/api")
    assert body["prefect_flow_run_id"] == str(flow_run)
    assert body["prefect_url"] == f"{ui}/runs/flow-run/{flow_run}"
    assert body["status"] == "failed" and body["error_node_id"] == "b"
    assert body["trigger_payload"] == {"text": "hi"}
    a, b = body["node_runs"]
    assert a["node_id"] == "a" and a["duration_ms"] == 250
    assert a["input"] == {"in": [1]} and not a["input_truncated"]
    assert a["output_truncated"] and a["output"]["truncated"] is True
    assert a["prefect_task_run_id"] == str(task_run) and a["fired_ports"] == ["out"]
    assert b["status"] == "failed" and b["attempts"] == 3
    assert b["error"] == "boom" and b["error_code"] == "transient_error"
    assert b["duration_ms"] == 1000


async def test_detail_lists_node_runs_in_graph_order_not_start_order(
    client: httpx.AsyncClient, team: Team, db: Any
) -> None:
    began = utcnow() - timedelta(minutes=5)
    execution_id = await add_execution(
        db,
        team.workspace_id,
        created_at=began,
        nodes=[
            # the run recorded each node's place in graph order; the lower branch started first
            {"node_id": "upper", "seq": 1, "started_at": began + timedelta(seconds=2)},
            {"node_id": "trigger", "seq": 0, "started_at": began},
            {"node_id": "lower", "seq": 2, "started_at": began + timedelta(seconds=1)},
            {"node_id": "never", "seq": 3, "status": "skipped"},
        ],
    )
    answer = await client.get(
        executions_url(team.workspace_id, f"/{execution_id}"), headers=team.viewer.headers
    )
    assert answer.status_code == 200, answer.text
    listed = [(n["node_id"], n["seq"]) for n in answer.json()["node_runs"]]
    assert listed == [("trigger", 0), ("upper", 1), ("lower", 2), ("never", 3)]


async def test_detail_of_a_real_run(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    meta = RunMeta(flow_name="Chain", workspace_id=uuid.UUID(team.workspace_id))
    await start_graph_run(CHAIN, {"n": 1}, meta)
    answer = await client.get(
        executions_url(team.workspace_id, f"/{meta.execution_id}"), headers=team.editor.headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "completed" and body["flow_name"] == "Chain"
    assert body["prefect_url"].endswith(f"/runs/flow-run/{body['prefect_flow_run_id']}")
    assert [n["node_id"] for n in body["node_runs"]] == ["t", "a", "b"]
    for node in body["node_runs"]:
        assert node["status"] == "completed" and node["attempts"] == 1
        assert node["prefect_task_run_id"] and node["duration_ms"] is not None
    assert body["node_runs"][1]["input"] == {"in": [{"n": 1}]}


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with serve_llm() as server:
        yield server


async def test_runs_carry_their_model_usage_and_cost(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime, llm: ScriptedLLM
) -> None:
    workspace = uuid.UUID(team.workspace_id)
    runtime.settings = allowing_loopback(runtime.settings)  # the scripted server's host
    async with runtime.db.session() as session:
        row = Credential(workspace_id=workspace, name="Scripted", kind="openai")
        secret = parse_secret("openai", {"api_key": "sk-test-key", "base_url": llm.url})
        seal_credential(row, secret, key_wrapper(runtime.settings))
        session.add(row)
    script_question(llm, "Yes, we ship to Spain.")
    ai = RunMeta(flow_name="AI", workspace_id=workspace)
    await start_graph_run(two_model_graph(), {"text": "Do you ship to Spain?"}, ai)
    plain = RunMeta(flow_name="Chain", workspace_id=workspace)
    await start_graph_run(CHAIN, {"n": 1}, plain)

    async with runtime.db.session() as session:
        recorded = await session.get(FlowExecution, ai.execution_id)
    assert recorded is not None and recorded.llm_calls == 2
    expected = {
        "calls": 2,
        "input_tokens": recorded.input_tokens,
        "output_tokens": recorded.output_tokens,
        "total_tokens": recorded.total_tokens,
        "cost_usd": pytest.approx(recorded.cost_usd),
        "unpriced_calls": 0,
    }
    assert recorded.total_tokens > 0 and recorded.cost_usd > 0

    listed = await client.get(executions_url(team.workspace_id), headers=team.viewer.headers)
    assert listed.status_code == 200, listed.text
    by_id = {e["id"]: e for e in listed.json()["items"]}
    assert by_id[str(ai.execution_id)]["usage"] == expected
    assert by_id[str(plain.execution_id)]["usage"] is None
    assert "llm_calls" not in by_id[str(ai.execution_id)]

    detail = await client.get(
        executions_url(team.workspace_id, f"/{ai.execution_id}"), headers=team.viewer.headers
    )
    body = detail.json()
    assert body["usage"] == expected
    nodes = {n["node_id"]: n["usage"] for n in body["node_runs"]}
    assert nodes["t"] is None
    assert nodes["intent"]["calls"] == nodes["reply"]["calls"] == 1
    assert nodes["intent"]["total_tokens"] + nodes["reply"]["total_tokens"] == (
        recorded.total_tokens
    )
    assert nodes["reply"]["model"] == "gpt-4o-mini"
    detail = await client.get(
        executions_url(team.workspace_id, f"/{plain.execution_id}"), headers=team.viewer.headers
    )
    assert detail.json()["usage"] is None
    assert all(n["usage"] is None for n in detail.json()["node_runs"])


async def test_a_running_runs_usage_is_the_sum_of_its_nodes_so_far(
    client: httpx.AsyncClient, team: Team, db: Any
) -> None:
    usage = {"provider": "openai", "model": "m", "calls": 1, "input_tokens": 10}
    usage |= {"output_tokens": 4, "total_tokens": 14, "cost_usd": 0.5, "unpriced_calls": 0}
    execution_id = await add_execution(
        db,
        team.workspace_id,
        created_at=utcnow(),
        status="running",
        nodes=[
            {"node_id": "a", "output": {"text": "hi", "usage": usage}},
            {
                "node_id": "b",
                "output": {"truncated": True, "size": 9000, "preview": "{", "usage": usage},
                "output_truncated": True,
            },
            {"node_id": "c", "status": "running"},
        ],
    )
    answer = await client.get(
        executions_url(team.workspace_id, f"/{execution_id}"), headers=team.viewer.headers
    )
    body = answer.json()
    assert body["usage"] == {
        "calls": 2,
        "input_tokens": 20,
        "output_tokens": 8,
        "total_tokens": 28,
        "cost_usd": 1.0,
        "unpriced_calls": 0,
    }
    by_node = {n["node_id"]: n["usage"] for n in body["node_runs"]}
    assert by_node["a"] == by_node["b"] == usage and by_node["c"] is None
    listed = await client.get(executions_url(team.workspace_id), headers=team.viewer.headers)
    (item,) = [e for e in listed.json()["items"] if e["id"] == str(execution_id)]
    assert item["usage"] is None, "the list shows the totals written when a run finishes"


def test_the_prefect_link_uses_the_ui_url_else_the_api_url_without_api() -> None:
    configured = Settings(prefect={"ui_url": "https://ops.example/prefect/"})
    assert prefect_ui_url(configured) == "https://ops.example/prefect"
    derived = Settings(prefect={"api_url": "http://10.0.0.5:4200/api/"})
    assert prefect_ui_url(derived) == "http://10.0.0.5:4200"


async def test_other_workspaces_outsiders_and_anonymous_callers_see_nothing(
    client: httpx.AsyncClient, team: Team, db: Any
) -> None:
    theirs = await add_execution(db, team.other_workspace_id, created_at=utcnow())
    ours = await add_execution(db, team.workspace_id, created_at=utcnow())

    crossed = await client.get(
        executions_url(team.workspace_id, f"/{theirs}"), headers=team.admin.headers
    )
    assert crossed.status_code == 404
    assert crossed.json()["code"] == "execution_not_found"
    missing = await client.get(
        executions_url(team.workspace_id, f"/{uuid.uuid4()}"), headers=team.admin.headers
    )
    assert missing.status_code == 404
    own = await client.get(
        executions_url(team.other_workspace_id, f"/{theirs}"), headers=team.outsider.headers
    )
    assert own.status_code == 200

    for url in (executions_url(team.workspace_id), executions_url(team.workspace_id, f"/{ours}")):
        outsider = await client.get(url, headers=team.outsider.headers)
        assert outsider.status_code == 404
        assert outsider.json()["code"] == "workspace_not_found"
        anonymous = await client.get(url)
        assert anonymous.status_code == 401


# --- the hub --------------------------------------------------------------------------------


def node_event(workspace_id: uuid.UUID, execution_id: uuid.UUID, n: int) -> NodeEvent:
    return NodeEvent(
        workspace_id=workspace_id,
        execution_id=execution_id,
        flow_id=None,
        node_id=f"n{n}",
        kind="test.sleep",
        version=1,
        label=f"n{n}",
        status="running",
        attempts=1,
        error=None,
        error_code=None,
        fired_ports=None,
        prefect_task_run_id=None,
        started_at=utcnow(),
        finished_at=None,
    )


def execution_event(workspace_id: uuid.UUID, execution_id: uuid.UUID, status: str) -> Any:
    return ExecutionEvent(
        workspace_id=workspace_id,
        execution_id=execution_id,
        flow_id=None,
        flow_version_id=None,
        flow_name="x",
        status=status,
        sandbox=False,
        prefect_flow_run_id=None,
        error=None,
        error_node_id=None,
        started_at=utcnow(),
        finished_at=None,
    )


async def test_hub_drops_a_lagging_subscriber_without_ever_blocking() -> None:
    hub = ExecutionEvents(queue_size=3)
    workspace, execution = uuid.uuid4(), uuid.uuid4()
    slow = hub.subscribe(workspace)
    elsewhere = hub.subscribe(uuid.uuid4())
    hub.publish(execution_event(workspace, execution, "running"))
    for n in range(4):
        hub.publish(node_event(workspace, execution, n))
    assert slow.lagged
    assert hub.subscriber_count(workspace) == 0
    received = [event async for event in slow]
    assert [getattr(e, "node_id", "execution") for e in received] == ["execution", "n0", "n1"]

    started = time.perf_counter()
    with hub.subscribe(workspace):  # never read: dropped once full, publishing goes on
        for n in range(20_000):
            hub.publish(node_event(workspace, execution, n))
    assert time.perf_counter() - started < 2.0
    assert elsewhere.snapshot == [] and elsewhere._queue.empty()
    elsewhere.close()


async def test_hub_keeps_the_state_of_running_executions_only() -> None:
    hub = ExecutionEvents()
    workspace, execution = uuid.uuid4(), uuid.uuid4()
    hub.publish(node_event(workspace, execution, 0))  # unknown execution: not remembered
    assert hub.live(workspace) == []
    hub.publish(execution_event(workspace, execution, "running"))
    hub.publish(node_event(workspace, execution, 1))
    with hub.subscribe(workspace, execution_id=execution) as subscription:
        [live] = subscription.snapshot
        assert [n.node_id for n in live.nodes] == ["n1"]
    hub.publish(execution_event(workspace, execution, "completed"))
    assert hub.live(workspace) == []


async def test_the_app_uses_its_own_hub_else_the_runtimes(app: Any, runtime: EngineRuntime) -> None:
    assert events_hub(app) is runtime.events
    own = ExecutionEvents()
    app.state.events = own
    try:
        assert events_hub(app) is own
    finally:
        del app.state.events


# --- WebSocket ------------------------------------------------------------------------------


@pytest.fixture
async def ws_base(app: Any, runtime: EngineRuntime) -> AsyncIterator[str]:
    """The app served by uvicorn on loopback, on the tests' event loop (the database's)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    yield f"ws://127.0.0.1:{port}"
    server.should_exit = True
    await serving
    sock.close()


async def receive(sock: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(sock.recv(), 15)))


async def until_finished(sock: ClientConnection, execution_id: uuid.UUID) -> list[dict[str, Any]]:
    messages = []
    while True:
        message = await receive(sock)
        messages.append(message)
        if (
            message["type"] == "execution"
            and message["execution_id"] == str(execution_id)
            and message["status"] not in ("pending", "running")
        ):
            return messages


async def eventually(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def refusal(url: str, **options: Any) -> tuple[int, str]:
    async with connect(url, **options) as sock:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(sock.recv(), 15)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def stream_url(base: str, workspace_id: str, query: str = "") -> str:
    return f"{base}/ws/workspaces/{workspace_id}/executions{query}"


async def test_a_member_receives_each_update_of_a_run_in_order(
    ws_base: str, team: Team, runtime: EngineRuntime
) -> None:
    url = stream_url(ws_base, team.workspace_id)
    async with connect(url, additional_headers=team.viewer.headers) as sock:
        snapshot = await receive(sock)
        assert snapshot == {
            "type": "snapshot",
            "workspace_id": team.workspace_id,
            "execution_id": None,
            "executions": [],
        }
        # a run of another workspace first: none of it may reach this stream
        await start_graph_run(CHAIN, {}, RunMeta(workspace_id=uuid.UUID(team.other_workspace_id)))
        flow_id = uuid.uuid4()
        meta = RunMeta(
            flow_name="Chain", workspace_id=uuid.UUID(team.workspace_id), flow_id=flow_id
        )
        await start_graph_run(CHAIN, {"n": 1}, meta)
        messages = await until_finished(sock, meta.execution_id)

    assert {m["execution_id"] for m in messages} == {str(meta.execution_id)}
    assert {m["workspace_id"] for m in messages} == {team.workspace_id}
    assert {m["flow_id"] for m in messages} == {str(flow_id)}
    assert [(m["type"], m.get("node_id"), m["status"]) for m in messages] == [
        ("execution", None, "running"),
        ("node", "t", "running"),
        ("node", "t", "completed"),
        ("node", "a", "running"),
        ("node", "a", "completed"),
        ("node", "b", "running"),
        ("node", "b", "completed"),
        ("execution", None, "completed"),
    ]
    done = messages[-1]
    assert done["prefect_flow_run_id"] and done["finished_at"] and done["duration_ms"] >= 0
    assert done["error"] is None
    second = messages[4]
    assert second["label"] == "First" and second["attempts"] == 1
    assert second["prefect_task_run_id"] and second["fired_ports"] == ["out"]
    assert second["duration_ms"] is not None and "output" not in second
    await eventually(lambda: runtime.events.subscriber_count() == 0)


async def test_a_client_connecting_mid_run_first_gets_the_current_state(
    ws_base: str, team: Team, runtime: EngineRuntime
) -> None:
    workspace = uuid.UUID(team.workspace_id)
    meta = RunMeta(flow_name="Slow", workspace_id=workspace)
    with runtime.events.subscribe(workspace, execution_id=meta.execution_id) as watcher:
        running = asyncio.create_task(start_graph_run(SLOW, {"x": 1}, meta))
        async for event in watcher:
            if getattr(event, "node_id", None) == "slow" and event.status == "running":
                break
    token = team.viewer.headers["Authorization"].removeprefix("Bearer ")
    one = stream_url(ws_base, team.workspace_id, f"?execution_id={meta.execution_id}")
    every = stream_url(ws_base, team.workspace_id, f"?token={token}")
    async with (
        connect(one, additional_headers=team.admin.headers) as followed,
        connect(every) as whole,
    ):
        for sock, narrowed in ((followed, str(meta.execution_id)), (whole, None)):
            snapshot = await receive(sock)
            assert snapshot["type"] == "snapshot" and snapshot["execution_id"] == narrowed
            [execution] = snapshot["executions"]
            assert execution["id"] == str(meta.execution_id)
            assert execution["status"] == "running" and execution["flow_name"] == "Slow"
            nodes = {n["node_id"]: n["status"] for n in execution["node_runs"]}
            assert nodes == {"t": "completed", "slow": "running"}
        for sock in (followed, whole):
            rest = await until_finished(sock, meta.execution_id)
            assert [(m["type"], m.get("node_id"), m["status"]) for m in rest] == [
                ("node", "slow", "completed"),
                ("execution", None, "completed"),
            ]
    state = await running
    assert state.is_completed()


async def test_refused_callers_get_a_close_code(
    ws_base: str, team: Team, client: httpx.AsyncClient
) -> None:
    url = stream_url(ws_base, team.workspace_id)
    code, reason = await refusal(url, additional_headers=team.outsider.headers)
    assert code == 4403 and "not a member" in reason
    assert (
        await refusal(stream_url(ws_base, str(uuid.uuid4())), additional_headers=team.admin.headers)
    )[0] == 4403
    code, reason = await refusal(url)
    assert code == 4401 and "not signed in" in reason
    assert (await refusal(url, additional_headers={"Authorization": "Bearer nope"}))[0] == 4401
    assert (await refusal(f"{url}?token=nope"))[0] == 4401


async def test_the_session_cookie_works_from_the_apps_origin_only(
    ws_base: str, team: Team, client: httpx.AsyncClient
) -> None:
    login = await client.post(
        "/api/auth/login", data={"username": team.viewer.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    cookie = {"Cookie": f"sf_session={login.cookies['sf_session']}"}
    url = stream_url(ws_base, team.workspace_id)
    same_origin = ws_base.replace("ws://", "http://")
    for origin in ({}, {"Origin": same_origin}):
        async with connect(url, additional_headers={**cookie, **origin}) as sock:
            assert (await receive(sock))["type"] == "snapshot"
    code, reason = await refusal(
        url, additional_headers={**cookie, "Origin": "https://elsewhere.example"}
    )
    assert code == 4403 and "origin" in reason
    stale = {"Cookie": "sf_session=not-a-session"}
    assert (await refusal(url, additional_headers=stale))[0] == 4401


async def test_a_client_that_falls_behind_is_closed_with_1013(
    ws_base: str, team: Team, app: Any
) -> None:
    hub = ExecutionEvents(queue_size=2)
    app.state.events = hub
    workspace, execution = uuid.UUID(team.workspace_id), uuid.uuid4()
    try:
        async with connect(
            stream_url(ws_base, team.workspace_id), additional_headers=team.viewer.headers
        ) as sock:
            assert (await receive(sock))["type"] == "snapshot"
            await eventually(lambda: hub.subscriber_count(workspace) == 1)
            for n in range(10):  # no await in between: the server cannot send any of them yet
                hub.publish(node_event(workspace, execution, n))
            assert [(await receive(sock))["node_id"] for _ in range(2)] == ["n0", "n1"]
            with pytest.raises(ConnectionClosed) as closed:
                await receive(sock)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013 and "reconnect" in closed.value.rcvd.reason
    finally:
        del app.state.events
