"""The headline guarantee: a flow replying to comments, run by a real worker against the
emulator, lands its reply once, even when the emulator fails the first two calls with code 2
and the worker is killed after the send but before the run finishes."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from socialflow.api.webhooks.service import store_webhook
from socialflow.instagram import build_comment, encode_body
from socialflow.orchestration import Dispatcher, EngineRuntime, FlowExecution, InboxWriter, NodeRun
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.flows import publish
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    connect_account,
    graph_emulator,
    ledger,
)
from tests.orchestration.test_worker_crash import start_worker

REPLY_FLOW: dict[str, Any] = {
    "nodes": [
        {"id": "comment", "kind": "instagram.comment", "label": "Comment"},
        {
            "id": "reply",
            "kind": "instagram.reply_comment",
            "label": "Reply",
            "config": {"message": "Thanks {{ trigger.from_username }}, check your DMs!"},
            "settings": {"retries": 3, "retry_delay_seconds": 0.2},
        },
        {"id": "wait", "kind": "logic.delay", "label": "Wait", "config": {"seconds": 6}},
    ],
    "edges": [
        {"source": "comment", "source_port": "event", "target": "reply"},
        {"source": "reply", "source_port": "result", "target": "wait"},
    ],
}


async def _node(runtime: EngineRuntime, node_id: str) -> NodeRun | None:
    async with runtime.db.sessionmaker() as session:
        row: NodeRun | None = await session.scalar(
            select(NodeRun).where(NodeRun.node_id == node_id)
        )
        return row


async def _execution(runtime: EngineRuntime, version_id: object) -> FlowExecution:
    async with runtime.db.sessionmaker() as session:
        row = await session.scalar(
            select(FlowExecution).where(FlowExecution.flow_version_id == version_id)
        )
        assert row is not None
        return row


@pytest.mark.timeout(600)
async def test_reply_lands_once_through_transient_errors_and_a_killed_worker(
    pg_runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    runtime = pg_runtime
    account = await connect_account(runtime, mode="live")
    comment = graph_emulator.state.add_comment({"account": ACCOUNT, "from_username": "ana"})
    _, version_id = await publish(
        runtime.db,
        runtime.registry,
        runtime.settings,
        REPLY_FLOW,
        name="reply to comments",
        workspace_id=account.workspace_id,
    )
    graph_emulator.state.add_fault({"code": 2, "count": 2, "path_contains": "/replies"})
    body = build_comment(
        "price?", account_id=ACCOUNT, comment_id=comment["id"], from_username="ana"
    )
    inbox = InboxWriter(runtime.db)
    try:
        await store_webhook(inbox, encode_body(body))
    finally:
        await inbox.close()
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass

    os.environ["SOCIALFLOW_INSTAGRAM_GRAPH_INSTAGRAM_URL"] = graph_emulator.url
    log = tmp_path / "workers.log"
    loop = asyncio.get_running_loop()
    try:
        first = start_worker(runtime.db.url, log)
        try:
            # the reply has landed and the run is held in the delay node: kill the worker now
            deadline = loop.time() + 180
            while True:
                wait = await _node(runtime, "wait")
                if wait is not None and wait.status == "running":
                    break
                assert first.poll() is None, log.read_text()[-3000:]
                assert loop.time() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        assert len(graph_emulator.calls("/replies")) == 1
        assert graph_emulator.state.attempts == 3  # two code-2 failures, then the reply
        crashed = await _execution(runtime, version_id)
        assert crashed.status == "running"
        assert crashed.prefect_flow_run_id is not None, "the run must be known to Prefect"

        second = start_worker(runtime.db.url, log)
        try:
            deadline = loop.time() + 180
            while (await _execution(runtime, version_id)).status != "completed":
                assert second.poll() is None, log.read_text()[-3000:]
                assert loop.time() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(60)
    finally:
        os.environ.pop("SOCIALFLOW_INSTAGRAM_GRAPH_INSTAGRAM_URL", None)

    execution = await _execution(runtime, version_id)
    assert execution.attempt == 2, "the run was taken over by the second worker"
    (reply,) = graph_emulator.calls("/replies")
    assert reply["body"] == {"message": "Thanks ana, check your DMs!"}
    assert graph_emulator.state.attempts == 3, "the re-executed run sent nothing"
    (row,) = await ledger(runtime, account_id=account.id)
    assert (row.status, row.attempts, row.target) == ("sent", 3, comment["id"])
    node = await _node(runtime, "reply")
    assert node is not None and node.output is not None
    assert node.output["result"]["duplicate"] is True
    assert node.output["result"]["ledger_id"] == str(row.id)
