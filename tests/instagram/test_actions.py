"""The four action nodes run in real flow runs against the emulator, live and sandboxed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from socialflow.core.db import utcnow
from socialflow.instagram import InstagramAccount
from socialflow.orchestration import (
    EngineRuntime,
    ExecutionRead,
    GraphSpec,
    RunMeta,
    get_execution,
    start_graph_run,
)
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    connect_account,
    graph_emulator,
    ledger,
    use_emulator,
)


def action_graph(kind: str, config: dict[str, Any], **settings: Any) -> GraphSpec:
    node: dict[str, Any] = {"id": "act", "kind": kind, "label": "Act", "config": config}
    if settings:
        node["settings"] = settings
    return GraphSpec.model_validate(
        {
            "nodes": [{"id": "t", "kind": "trigger.manual", "label": "Start"}, node],
            "edges": [{"source": "t", "source_port": "event", "target": "act"}],
        }
    )


async def run_action(
    runtime: EngineRuntime,
    account: InstagramAccount,
    spec: GraphSpec,
    trigger: dict[str, Any],
    **meta: Any,
) -> ExecutionRead:
    run_meta = RunMeta(
        flow_name="ig-actions",
        workspace_id=account.workspace_id,
        flow_id=meta.pop("flow_id", uuid.uuid4()),
        flow_version_id=meta.pop("flow_version_id", uuid.uuid4()),
        **meta,
    )
    await start_graph_run(spec, trigger, run_meta)
    async with runtime.db.session() as session:
        return await get_execution(session, run_meta.execution_id)


def comment_event(emulator: GraphEmulator, **extra: Any) -> dict[str, Any]:
    comment = emulator.state.add_comment({"account": ACCOUNT, "from_id": "4440001", **extra})
    return {
        "kind": "comment",
        "account_id": ACCOUNT,
        "comment_id": comment["id"],
        "occurred_at": comment["timestamp"].replace("+0000", "+00:00"),
        "from_id": "4440001",
        "from_username": "ana",
        "text": "price?",
    }


def node_run(execution: ExecutionRead, node_id: str = "act") -> Any:
    return next(n for n in execution.node_runs if n.node_id == node_id)


async def test_each_action_lands_once_and_is_in_the_ledger(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    event = comment_event(graph_emulator)
    cases = [
        ("instagram.reply_comment", {"message": "Thanks {{ trigger.from_username }}!"}, "/replies"),
        ("instagram.private_reply", {"text": "Check your DMs"}, "/messages"),
        ("instagram.hide_comment", {}, "hide"),
    ]
    for kind, config, path in cases:
        execution = await run_action(runtime, account, action_graph(kind, config), event)
        assert execution.status == "completed", node_run(execution).error
        output = node_run(execution).output["result"]
        assert output["status"] == "sent" and output["response"]
        posts = graph_emulator.calls(method="POST")
        assert len([c for c in posts if path in c["path"] or path in c["params"]]) == 1
    assert graph_emulator.calls("/replies")[0]["body"] == {"message": "Thanks ana!"}
    rows = await ledger(runtime, account_id=account.id)
    assert [(r.action, r.status, r.target) for r in rows] == [
        ("reply_comment", "sent", event["comment_id"]),
        ("private_reply", "sent", event["comment_id"]),
        ("hide_comment", "sent", event["comment_id"]),
    ]
    assert all(r.attempts == 1 and r.sent_at and r.policy_verdict == "allowed" for r in rows)


async def test_send_dm_answers_within_the_window(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    graph_emulator.state.add_message(ACCOUNT, "7770001")
    dm = {
        "kind": "dm",
        "account_id": ACCOUNT,
        "sender_id": "7770001",
        "message_id": "aWdfMID1",
        "occurred_at": utcnow().isoformat(),
        "text": "hi",
    }
    spec = action_graph(
        "instagram.send_dm",
        {"text": "Hello! Pick one", "quick_replies": [{"title": "Prices", "payload": "P"}]},
    )
    execution = await run_action(runtime, account, spec, dm)
    assert execution.status == "completed", node_run(execution).error
    body = graph_emulator.calls("/messages")[0]["body"]
    assert body["recipient"] == {"id": "7770001"}
    assert body["message"]["quick_replies"][0]["payload"] == "P"


async def test_sandbox_account_records_and_sends_nothing(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime, mode="sandbox")
    event = comment_event(graph_emulator)
    execution = await run_action(
        runtime, account, action_graph("instagram.private_reply", {"text": "hi"}), event
    )
    assert execution.status == "completed"
    assert node_run(execution).output["result"]["status"] == "sandboxed"
    assert graph_emulator.calls() == [] and graph_emulator.state.attempts == 0
    (row,) = await ledger(runtime, account_id=account.id)
    assert (row.status, row.sandbox, row.policy_verdict, row.payload) == (
        "sandboxed",
        True,
        "allowed",
        {"text": "hi"},
    )


async def test_editor_test_runs_are_sandboxed_even_for_a_live_account(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime, mode="live")
    event = comment_event(graph_emulator)
    spec = action_graph("instagram.reply_comment", {"message": "hello"})
    for _ in range(2):  # every test run is recorded on its own
        execution = await run_action(runtime, account, spec, event, sandbox=True)
        assert node_run(execution).output["result"]["status"] == "sandboxed"
    assert graph_emulator.calls() == []
    rows = await ledger(runtime, account_id=account.id)
    assert [r.status for r in rows] == ["sandboxed", "sandboxed"]


async def test_an_unknown_account_fails_the_node_clearly(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    event = comment_event(graph_emulator) | {"account_id": "999"}
    execution = await run_action(
        runtime, account, action_graph("instagram.hide_comment", {}), event
    )
    assert execution.status == "failed"
    assert "no Instagram account '999' is connected" in node_run(execution).error


async def test_an_expired_token_marks_the_account_and_fails_without_retry(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    graph_emulator.state.add_fault({"code": 190, "subcode": 463})
    event = comment_event(graph_emulator)
    spec = action_graph("instagram.hide_comment", {}, retries=2, retry_delay_seconds=0)
    execution = await run_action(runtime, account, spec, event)
    assert execution.status == "failed"
    assert node_run(execution).error_code == "instagram_token_invalid"
    assert node_run(execution).attempts == 1
    async with runtime.db.sessionmaker() as session:
        stored = await session.get(InstagramAccount, account.id)
        assert stored is not None and stored.token_status == "invalid"
        assert "190" in (stored.last_error or "")
    (row,) = await ledger(runtime, account_id=account.id)
    assert row.status == "failed" and row.error_code == "instagram_token_invalid"


async def test_human_agent_answers_after_24_hours_only_when_enabled(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    graph_emulator.state.add_message(ACCOUNT, "7770002", age_seconds=2 * 86400)
    dm = {
        "kind": "dm",
        "account_id": ACCOUNT,
        "sender_id": "7770002",
        "message_id": "aWdfMID2",
        "occurred_at": (utcnow() - timedelta(days=2)).isoformat(),
    }
    plain = await run_action(
        runtime, account, action_graph("instagram.send_dm", {"text": "Hi"}), dm
    )
    assert plain.status == "failed" and "24-hour" in node_run(plain).error
    spec = action_graph("instagram.send_dm", {"text": "Hi", "human_agent": True})
    tagged = await run_action(runtime, account, spec, dm)
    assert tagged.status == "completed", node_run(tagged).error
    (call,) = graph_emulator.calls("/messages")
    assert call["body"]["tag"] == "HUMAN_AGENT"
    rows = await ledger(runtime, account_id=account.id)
    assert [(r.status, r.payload.get("tag")) for r in rows] == [
        ("refused", None),
        ("sent", "HUMAN_AGENT"),
    ]
