"""The send ledger: a retried node and a re-executed run send exactly once."""

from __future__ import annotations

import uuid

from socialflow.instagram.emulator import GraphEmulator
from socialflow.orchestration import EngineRuntime
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    connect_account,
    graph_emulator,
    ledger,
    use_emulator,
)
from tests.instagram.test_actions import action_graph, comment_event, node_run, run_action


async def forget_node_runs(runtime: EngineRuntime, execution_id: uuid.UUID) -> None:
    """What a worker does before it runs a claimed execution again."""
    from sqlalchemy import delete

    from socialflow.orchestration import NodeRun

    async with runtime.db.sessionmaker() as session:
        await session.execute(delete(NodeRun).where(NodeRun.execution_id == execution_id))
        await session.commit()


async def test_a_node_retried_after_code_2_sends_once(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    event = comment_event(graph_emulator)
    graph_emulator.state.add_fault({"code": 2, "count": 2, "path_contains": "/replies"})
    spec = action_graph(
        "instagram.reply_comment", {"message": "Thanks!"}, retries=3, retry_delay_seconds=0
    )
    execution = await run_action(runtime, account, spec, event)
    assert execution.status == "completed", node_run(execution).error
    assert node_run(execution).attempts == 3
    assert len(graph_emulator.calls("/replies")) == 1
    assert graph_emulator.state.attempts == 3
    (row,) = await ledger(runtime, account_id=account.id)
    assert (row.status, row.attempts, row.error_code) == ("sent", 3, None)


async def test_transient_failures_past_the_retries_leave_the_row_queued(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    event = comment_event(graph_emulator)
    graph_emulator.state.add_fault({"code": 2, "count": 2})
    spec = action_graph(
        "instagram.reply_comment", {"message": "Hi"}, retries=1, retry_delay_seconds=0
    )
    meta = {"execution_id": uuid.uuid4(), "flow_id": uuid.uuid4(), "flow_version_id": uuid.uuid4()}
    execution = await run_action(runtime, account, spec, event, **meta)
    assert execution.status == "failed" and node_run(execution).error_code == "instagram_transient"
    (row,) = await ledger(runtime, account_id=account.id)
    assert (row.status, row.attempts, row.error_code) == ("queued", 2, "instagram_transient")
    assert graph_emulator.calls() == []
    # the run re-dispatched later finds the key and finishes the same entry
    await forget_node_runs(runtime, meta["execution_id"])
    again = await run_action(runtime, account, spec, event, **meta)
    assert again.status == "completed"
    (row,) = await ledger(runtime, account_id=account.id)
    assert (row.status, row.attempts) == ("sent", 3)
    assert len(graph_emulator.calls("/replies")) == 1


async def test_a_run_executed_again_does_not_send_again(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    event = comment_event(graph_emulator)
    spec = action_graph("instagram.private_reply", {"text": "See DMs"})
    meta = {"execution_id": uuid.uuid4(), "flow_id": uuid.uuid4(), "flow_version_id": uuid.uuid4()}
    first = await run_action(runtime, account, spec, event, **meta)
    first_output = node_run(first).output["result"]
    await forget_node_runs(runtime, meta["execution_id"])
    second = await run_action(runtime, account, spec, event, **meta)
    assert first.status == second.status == "completed"
    assert node_run(second).output["result"]["duplicate"] is True
    assert first_output["ledger_id"] == node_run(second).output["result"]["ledger_id"]
    assert len(graph_emulator.calls("/messages")) == 1
    assert len(await ledger(runtime, account_id=account.id)) == 1
    # another version of the flow replying to the same comment is a new intent (the key
    # names the version), yet Meta's one-private-reply rule still holds through the policy
    other = await run_action(runtime, account, spec, event, flow_id=meta["flow_id"])
    assert other.status == "failed" and "already got a private reply" in node_run(other).error
    assert len(graph_emulator.calls("/messages")) == 1


async def test_an_interrupted_send_is_not_repeated(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """A row left in ``sending`` (the process died during the call) is never sent twice."""
    from sqlalchemy import update

    from socialflow.instagram import OutboxMessage

    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    event = comment_event(graph_emulator)
    spec = action_graph("instagram.reply_comment", {"message": "Hi"})
    meta = {"execution_id": uuid.uuid4(), "flow_id": uuid.uuid4(), "flow_version_id": uuid.uuid4()}
    await run_action(runtime, account, spec, event, **meta)
    async with runtime.db.sessionmaker() as session:
        await session.execute(update(OutboxMessage).values(status="sending"))
        await session.commit()
    await forget_node_runs(runtime, meta["execution_id"])
    again = await run_action(runtime, account, spec, event, **meta)
    assert again.status == "failed" and node_run(again).error_code == "instagram_outcome_unknown"
    assert len(graph_emulator.calls("/replies")) == 1
