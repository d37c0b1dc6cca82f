"""The send ledger: a retried node and a re-executed run send exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from socialflow.core.db import utcnow
from socialflow.instagram import OutboxMessage
from socialflow.instagram._gateway import SETTLE_MARGIN, ActionRequest, InstagramGateway
from socialflow.orchestration import EngineRuntime
from socialflow.testing.graph_api_emulator import GraphEmulator
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
        # its sender went silent longer ago than a call can take
        silent = utcnow() - timedelta(seconds=runtime.settings.instagram.request_timeout_seconds)
        await session.execute(
            update(OutboxMessage).values(
                status="sending", updated_at=silent - timedelta(seconds=SETTLE_MARGIN + 1)
            )
        )
        await session.commit()
    await forget_node_runs(runtime, meta["execution_id"])
    again = await run_action(runtime, account, spec, event, **meta)
    assert again.status == "failed" and node_run(again).error_code == "instagram_outcome_unknown"
    assert len(graph_emulator.calls("/replies")) == 1


def _twin_gateways(runtime: EngineRuntime, account: Any) -> list[InstagramGateway]:
    """Two runs of one step, as when a lapsed lease lets a second worker run the execution."""
    ids = {"flow_id": uuid.uuid4(), "flow_version_id": uuid.uuid4(), "execution_id": uuid.uuid4()}
    return [
        InstagramGateway(
            runtime.db,
            runtime.key_wrapper(),
            runtime.settings.instagram,
            None,
            workspace_id=account.workspace_id,
            sandbox=False,
            **ids,
        )
        for _ in range(2)
    ]


async def test_a_second_run_of_a_step_waits_for_the_send_in_flight(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime)
    comment = graph_emulator.state.add_comment({"account": ACCOUNT})["id"]
    graph_emulator.state.add_fault({"kind": "slow", "seconds": 1.0, "path_contains": "/replies"})
    first_run, second_run = _twin_gateways(runtime, account)
    request = ActionRequest(node_id="reply", action="reply_comment", target=comment, text="Hi!")
    first = asyncio.create_task(first_run.perform(request))
    while not [r for r in await ledger(runtime, account_id=account.id) if r.status == "sending"]:
        assert not first.done(), first
        await asyncio.sleep(0.02)
    # the first is waiting for Meta's answer: the second must neither send nor give up
    second = await second_run.perform(request)
    done = await first
    assert (done.status, done.duplicate) == ("sent", False)
    assert (second.status, second.duplicate, second.ledger_id) == ("sent", True, done.ledger_id)
    assert len(graph_emulator.calls("/replies")) == 1


async def test_of_two_runs_racing_for_a_queued_send_one_takes_it(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """Both read the row while it was queued; only one may move it to sending."""
    from sqlalchemy import select

    use_emulator(runtime, graph_emulator, private_reply_limit=1, private_reply_window_seconds=60)
    account = await connect_account(runtime)
    first_run, second_run = _twin_gateways(runtime, account)
    async with runtime.db.sessionmaker() as session:
        session.add(
            OutboxMessage(
                idempotency_key=f"race:{uuid.uuid4()}",
                workspace_id=account.workspace_id,
                account_id=account.id,
                node_id="reply",
                action="reply_comment",
                target="c1",
                payload={"text": "hi"},
                status="queued",
                policy_verdict="allowed",
            )
        )
        await session.commit()
        (row,) = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.account_id == account.id)
            )
        ).all()
    takes = await asyncio.gather(first_run._take(row), second_run._take(row))
    assert sorted(takes) == [False, True]
    (after,) = await ledger(runtime, account_id=account.id)
    assert (after.status, after.attempts) == ("sending", 1)


async def test_ledger_entries_say_whether_a_test_run_wrote_them(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    spec = action_graph("instagram.reply_comment", {"message": "Thanks!"})
    for mode in ("live", "sandbox"):
        account = await connect_account(runtime, mode=mode)
        for test_run in (False, True):
            event = comment_event(graph_emulator)
            execution = await run_action(runtime, account, spec, event, sandbox=test_run)
            assert execution.status == "completed", node_run(execution).error
            assert execution.sandbox is test_run
            rows = await ledger(runtime, execution_id=execution.id)
            assert len(rows) == 1
            # the execution's flag and its ledger entries agree
            assert [r.test_run for r in rows] == [execution.sandbox], (mode, test_run)
            # not sent: in a test run, and in every run of a sandboxed account
            assert rows[0].sandbox is (test_run or mode == "sandbox")
            assert rows[0].status == ("sandboxed" if rows[0].sandbox else "sent")
