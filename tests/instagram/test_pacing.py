"""Per-account pacing: sends past the limit wait in the ledger for their slot, in order."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest

from socialflow.core.db import Database
from socialflow.core.errors import TransientError
from socialflow.instagram import ActionRequest
from socialflow.orchestration import EngineRuntime
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    connect_account,
    graph_emulator,
    ledger,
    use_emulator,
)
from tests.instagram.test_policy import gateway


async def test_extra_sends_are_queued_with_increasing_slots_and_sent_in_order(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator, private_reply_limit=1, private_reply_window_seconds=0.4)
    account = await connect_account(runtime)
    comments = [graph_emulator.state.add_comment({"account": ACCOUNT})["id"] for _ in range(5)]
    sender = gateway(runtime, account)

    async def send(comment_id: str) -> None:
        await sender.perform(
            ActionRequest(node_id="pr", action="private_reply", target=comment_id, text="hi")
        )

    await asyncio.gather(*(send(c) for c in comments))
    rows = await ledger(runtime, account_id=account.id)
    assert [r.status for r in rows] == ["sent"] * 5
    slots = [r.scheduled_for for r in sorted(rows, key=lambda r: r.scheduled_for)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert all(gap >= timedelta(seconds=0.4) for gap in gaps), gaps
    in_slot_order = [r.target for r in sorted(rows, key=lambda r: r.scheduled_for)]
    sent_order = [c["body"]["recipient"]["comment_id"] for c in graph_emulator.calls("/messages")]
    assert sent_order == in_slot_order
    # no send went out before its slot
    for row in rows:
        assert row.sent_at is not None and row.scheduled_for is not None
        assert row.sent_at >= row.scheduled_for


async def test_within_the_limit_nothing_waits_and_other_actions_have_their_own_limit(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(
        runtime, graph_emulator, private_reply_limit=3, send_limit=1, send_window_seconds=0.3
    )
    account = await connect_account(runtime)
    comments = [graph_emulator.state.add_comment({"account": ACCOUNT})["id"] for _ in range(3)]
    sender = gateway(runtime, account)
    for comment_id in comments:
        await sender.perform(
            ActionRequest(node_id="pr", action="private_reply", target=comment_id, text="hi")
        )
        await sender.perform(
            ActionRequest(node_id="rc", action="reply_comment", target=comment_id, text="hey")
        )
    rows = await ledger(runtime, account_id=account.id)
    private = [r.scheduled_for for r in rows if r.action == "private_reply"]
    public = [r.scheduled_for for r in rows if r.action == "reply_comment"]
    assert private == sorted(private) and public == sorted(public)
    assert public[-1] - public[0] >= timedelta(seconds=0.6)  # 1 per 0.3 s


async def test_a_slot_too_far_away_fails_retryably_and_stays_queued(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(
        runtime,
        graph_emulator,
        private_reply_limit=1,
        private_reply_window_seconds=3600,
        max_queue_wait_seconds=1,
    )
    account = await connect_account(runtime)
    first, second = (graph_emulator.state.add_comment({"account": ACCOUNT})["id"] for _ in "ab")
    sender = gateway(runtime, account)
    await sender.perform(
        ActionRequest(node_id="pr", action="private_reply", target=first, text="a")
    )
    with pytest.raises(TransientError, match="next slot") as later:
        await sender.perform(
            ActionRequest(node_id="pr", action="private_reply", target=second, text="b")
        )
    assert later.value.retry_after is not None and later.value.retry_after > 3000
    rows = await ledger(runtime, account_id=account.id)
    assert [r.status for r in rows] == ["sent", "queued"]
    assert rows[1].scheduled_for - rows[0].scheduled_for >= timedelta(seconds=3600)
    assert len(graph_emulator.calls("messages", method="POST")) == 1


async def test_processes_share_one_pace_per_account(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """Two processes (here: two threads, each with its own event loop and database engine, as
    separate replicas have) queueing sends for one account never take the same slot."""
    use_emulator(runtime, graph_emulator, private_reply_limit=1, private_reply_window_seconds=0.3)
    account = await connect_account(runtime)
    comments = [graph_emulator.state.add_comment({"account": ACCOUNT})["id"] for _ in range(6)]

    async def replica(targets: list[str]) -> None:
        db = Database(runtime.db.url)
        try:
            sender = gateway(runtime, account)
            sender.db = db
            await asyncio.gather(
                *(
                    sender.perform(
                        ActionRequest(node_id="pr", action="private_reply", target=t, text="hi")
                    )
                    for t in targets
                )
            )
        finally:
            await db.dispose()

    await asyncio.gather(
        *(asyncio.to_thread(asyncio.run, replica(comments[i::2])) for i in range(2))
    )
    rows = await ledger(runtime, account_id=account.id)
    assert sorted(r.status for r in rows) == ["sent"] * 6
    slots = sorted(r.scheduled_for for r in rows if r.scheduled_for is not None)
    assert len(slots) == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert all(gap >= timedelta(seconds=0.3) for gap in gaps), gaps


@pytest.mark.parametrize("run_status", ["failed", "running"])
async def test_a_queued_send_whose_run_ended_holds_no_slot(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
    run_status: str,
) -> None:
    """A send queued for a slot 50 s out whose run then gave up (failed) no longer delays the
    account's next send; while its run still waits (running), it does."""
    import uuid

    from socialflow.core.db import utcnow
    from socialflow.instagram import OutboxMessage
    from socialflow.instagram._pacing import next_slot
    from socialflow.orchestration import FlowExecution

    use_emulator(runtime, graph_emulator, send_limit=1, send_window_seconds=60)
    account = await connect_account(runtime)
    now = utcnow()
    execution_id = uuid.uuid4()
    async with runtime.db.sessionmaker() as session:
        session.add(
            FlowExecution(
                id=execution_id,
                flow_name="waits",
                trigger_kind="instagram.comment",
                status=run_status,
            )
        )
        session.add(
            OutboxMessage(
                idempotency_key=f"abandoned-{execution_id}",
                workspace_id=account.workspace_id,
                account_id=account.id,
                execution_id=execution_id,
                action="reply_comment",
                target="1790",
                status="queued",
                scheduled_for=now + timedelta(seconds=50),
            )
        )
        await session.commit()
    async with runtime.db.sessionmaker() as session:
        slot = await next_slot(
            session, account.id, "reply_comment", runtime.settings.instagram, now
        )
    if run_status == "failed":
        assert slot == now
    else:
        assert slot >= now + timedelta(seconds=110)  # one window after the waiting send
