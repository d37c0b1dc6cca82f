"""Replaying real events through a draft: sandbox runs of the draft beside the published
version's runs of the same events, the difference node by node and in words, and nothing sent."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import httpx
import pytest

from socialflow.instagram import build_comment, encode_body, sign_sha256
from socialflow.orchestration import EngineRuntime, FlowExecution, Worker
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.api.conftest import make_team
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    TOKEN,
    connect_account,
    graph_emulator,
    ledger,
    use_emulator,
)
from tests.instagram.test_webhook_dispatch import (  # noqa: F401 - fixture
    SECRET,
    executions,
    ig_client,
    new_account_id,
)

PUBLISHED: dict[str, Any] = {
    "nodes": [
        {"id": "ig", "kind": "instagram.comment", "config": {"keywords": ["price"]}},
        {
            "id": "reply",
            "kind": "instagram.reply_comment",
            "config": {"message": "Price: 29 €"},
        },
    ],
    "edges": [{"source": "ig", "source_port": "event", "target": "reply"}],
}


def draft_graph(*, keywords: list[str], message: str) -> dict[str, Any]:
    graph = copy.deepcopy(PUBLISHED)
    graph["nodes"][0]["config"]["keywords"] = keywords
    graph["nodes"][1]["config"]["message"] = message
    return graph


async def run_worker_until(runtime: EngineRuntime, done: Any, timeout: float = 180) -> None:
    worker = Worker(runtime, concurrency=2, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await done():
            assert asyncio.get_running_loop().time() < deadline, "runs did not finish"
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task


@pytest.mark.timeout(400)
async def test_a_draft_replayed_on_real_events_shows_what_it_would_send_and_sends_nothing(
    ig_client: httpx.AsyncClient,  # noqa: F811
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    client = ig_client
    team = await make_team(client)
    editor = team.editor.headers
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await client.post(
        base, json={"name": "Price replies", "graph": PUBLISHED}, headers=editor
    )
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    assert (await client.post(f"{base}/{flow_id}/publish", headers=editor)).status_code == 201
    use_emulator(runtime, graph_emulator)
    # an account of this test's own: the flow stays published, and the suite's shared runtime
    # must not answer other tests' comments to the emulator's default account with it
    account = new_account_id()
    graph_emulator.state.add_account(account, "replay_shop", TOKEN)
    await connect_account(
        runtime, mode="live", ig_user_id=account, workspace_id=uuid.UUID(team.workspace_id)
    )

    event_ids: dict[str, str] = {}
    for text in ("What's the PRICE?", "hello"):
        comment = graph_emulator.state.add_comment(
            {"id": f"179{uuid.uuid4().int % 10**14:014d}", "account": account}
        )
        body = encode_body(build_comment(text, account_id=account, comment_id=comment["id"]))
        sent = await client.post(
            "/webhooks/instagram",
            content=body,
            headers={"X-Hub-Signature-256": sign_sha256(SECRET, body)},
        )
        assert sent.status_code == 200, sent.text

    async def published_done() -> bool:
        page = (
            await client.get(
                f"/api/workspaces/{team.workspace_id}/events",
                params={"flow_id": flow_id},
                headers=team.viewer.headers,
            )
        ).json()
        if page["total"] < 2 or any(i["outcome"] == "pending" for i in page["items"]):
            return False
        for item in page["items"]:
            event_ids[item["preview"]] = item["id"]
        runs = await executions(runtime.db, FlowExecution.flow_id == uuid.UUID(flow_id))
        return bool(runs) and all(r.status in ("completed", "failed") for r in runs)

    await run_worker_until(runtime, published_done)
    posts_before = [c for c in graph_emulator.state.calls if c["method"] == "POST"]
    assert len(posts_before) == 1  # the published version's one reply
    sent_before = [row for row in await ledger(runtime) if not row.sandbox]
    assert [row.payload.get("text") for row in sent_before if str(row.flow_id) == flow_id] == [
        "Price: 29 €"
    ]

    # the user changes the reply and lets "hello" comments in too, then replays both events
    edited = await client.patch(
        f"{base}/{flow_id}",
        json={
            "graph": draft_graph(keywords=["price", "hello"], message="Price: 29 € — free shipping")
        },
        headers=editor,
    )
    assert edited.status_code == 200, edited.text
    started = await client.post(
        f"{base}/{flow_id}/replays",
        json={"event_ids": [event_ids["What's the PRICE?"], event_ids["hello"]]},
        headers=editor,
    )
    assert started.status_code == 202, started.text
    replay_id = started.json()["id"]
    url = f"{base}/{flow_id}/replays/{replay_id}"

    async def replay_done() -> bool:
        answer = await client.get(url, headers=team.viewer.headers)
        assert answer.status_code == 200, answer.text
        return bool(answer.json()["status"] == "finished")

    await run_worker_until(runtime, replay_done)
    replay = (await client.get(url, headers=team.viewer.headers)).json()
    asked, hello = replay["items"]
    assert asked["published"] is not None and asked["draft"] is not None
    assert asked["difference"] == [
        "published replied 'Price: 29 €'; the draft replies 'Price: 29 € — free shipping'"
    ]
    assert asked["sends_changed"] is True
    reply_node = {n["node_id"]: n for n in asked["nodes"]}["reply"]
    assert reply_node["published_status"] == reply_node["draft_status"] == "completed"
    assert [s["status"] for s in asked["draft_sends"]] == ["sandboxed"]

    assert hello["published"] is None and hello["draft"] is not None
    assert hello["difference"] == [
        "the published version did not run (filter not matched: `trigger.text` contains "
        "'price' was false for 'hello')",
        "the draft now replies 'Price: 29 € — free shipping'",
    ]
    assert {n["node_id"]: n["change"] for n in hello["nodes"]} == {"ig": "added", "reply": "added"}
    assert replay["summary"]["changed_sends"] == 2
    assert replay["summary"]["newly_run"] == 1
    assert replay["summary"]["words"].startswith("2 of 2 events change their sends")

    # nothing was sent: the ledger's real sends are the same, the draft's are sandboxed
    sent_after = [row for row in await ledger(runtime) if not row.sandbox]
    assert [r.id for r in sent_after] == [r.id for r in sent_before]
    assert [c for c in graph_emulator.state.calls if c["method"] == "POST"] == posts_before

    # a draft whose trigger would not take the event says so, and queues nothing
    await client.patch(
        f"{base}/{flow_id}",
        json={"graph": draft_graph(keywords=["refund"], message="x")},
        headers=editor,
    )
    last = await client.post(f"{base}/{flow_id}/replays", json={"last": 5}, headers=editor)
    assert last.status_code == 202, last.text
    items = last.json()["items"]
    assert [i["event_id"] for i in items] == [event_ids["What's the PRICE?"], event_ids["hello"]]
    assert all(i["draft"] is None for i in items)
    assert items[1]["draft_reason"] == (
        "filter not matched: `trigger.text` contains 'refund' was false for 'hello'"
    )
    assert items[0]["difference"] == [
        "the draft would not run: filter not matched: `trigger.text` contains 'refund' was "
        'false for "What\'s the PRICE?"',
        "published replied 'Price: 29 €'",
    ]
    assert last.json()["status"] == "finished"

    # bad requests name the field; viewers may read but not replay
    for request, field in (
        ({"event_ids": [event_ids["hello"]], "last": 3}, "exactly one"),
        ({}, "exactly one"),
        ({"last": 0}, "last"),
        ({"event_ids": [str(uuid.uuid4())]}, "event_ids"),
        ({"execution_ids": [str(uuid.uuid4())]}, "execution_ids"),
    ):
        refused = await client.post(f"{base}/{flow_id}/replays", json=request, headers=editor)
        assert refused.status_code == 422, (request, refused.text)
        assert field in refused.text, (request, refused.text)
    viewer = await client.post(
        f"{base}/{flow_id}/replays", json={"last": 1}, headers=team.viewer.headers
    )
    assert viewer.status_code == 403
    foreign = await client.get(
        f"/api/workspaces/{team.other_workspace_id}/flows/{flow_id}/replays/{replay_id}",
        headers=team.outsider.headers,
    )
    assert foreign.status_code == 404
