"""Conversation routes and what the event log says about waits: global keywords (validated,
per workspace), the waits a workspace sees, and the message that resumed a waiting run."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from socialflow.core.db import Database, utcnow
from socialflow.instagram import build_dm
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import ConversationWait, FlowExecution, GlobalKeyword
from tests.api.conftest import Team
from tests.instagram.test_webhook_dispatch import connect, deliver, drain, new_account_id

KEYWORDS = "/api/workspaces/{}/conversations/keywords"
WAITS = "/api/workspaces/{}/conversations/waits"


async def test_global_keywords_are_kept_per_workspace_normalised(
    client: httpx.AsyncClient, team: Team
) -> None:
    url = KEYWORDS.format(team.workspace_id)
    put = await client.put(
        url, json={"keywords": ["  STOP ", "stop", "Un  subscribe"]}, headers=team.editor.headers
    )
    assert put.status_code == 200, put.text
    assert put.json() == {"keywords": ["stop", "un subscribe"]}
    seen = await client.get(url, headers=team.viewer.headers)
    assert seen.json() == {"keywords": ["stop", "un subscribe"]}
    # another workspace's keywords are its own
    other = await client.get(
        KEYWORDS.format(team.other_workspace_id), headers=team.outsider.headers
    )
    assert other.json() == {"keywords": []}
    # replacing with nothing clears them
    cleared = await client.put(url, json={"keywords": []}, headers=team.admin.headers)
    assert cleared.json() == {"keywords": []}


@pytest.mark.parametrize(
    ("keywords", "problem"),
    [
        (["ok"] * 51, "keywords"),
        (["x" * 101], "keywords[0] must have 1 to 100 characters"),
        (["   "], "keywords[0] must have 1 to 100 characters"),
        (["ok", "st\u0007op"], "keywords[1] holds a control character"),
        ("stop", "keywords"),
        ([{"$ne": ""}], "keywords"),
    ],
)
async def test_bad_keywords_are_refused_with_the_field_named(
    client: httpx.AsyncClient, team: Team, keywords: Any, problem: str
) -> None:
    answer = await client.put(
        KEYWORDS.format(team.workspace_id), json={"keywords": keywords}, headers=team.editor.headers
    )
    assert answer.status_code == 422, answer.text
    assert problem in answer.text
    # a NUL never reaches the validator: the API refuses it for every body, the field named
    nul = await client.put(
        KEYWORDS.format(team.workspace_id),
        json={"keywords": ["st\u0000op"]},
        headers=team.editor.headers,
    )
    assert nul.status_code == 400 and nul.json()["details"]["path"] == "$.keywords[0]"
    extra = await client.put(
        KEYWORDS.format(team.workspace_id),
        json={"keywords": ["stop"], "more": 1},
        headers=team.editor.headers,
    )
    assert extra.status_code == 422


async def park(
    db: Database, workspace_id: uuid.UUID, account: str, contact: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """An execution of a flow of the workspace, waiting for ``contact`` on ``account``."""
    flow_id, execution_id = uuid.uuid4(), uuid.uuid4()
    async with db.sessionmaker() as session:
        session.add(
            FlowExecution(
                id=execution_id,
                workspace_id=workspace_id,
                flow_id=flow_id,
                flow_name="Ask",
                version_number=1,
                trigger_kind="instagram.dm",
                status="waiting",
                attempt=1,
            )
        )
        await session.flush()
        session.add(
            ConversationWait(
                execution_id=execution_id,
                workspace_id=workspace_id,
                flow_id=flow_id,
                node_id="ask",
                account_id=account,
                contact_id=contact,
                expects="email",
                question="Your email?",
                state={"tries": 0},
                outputs={},
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        await session.commit()
    return flow_id, execution_id


async def test_the_reply_resumes_the_wait_and_the_event_log_says_so(
    client: httpx.AsyncClient, team: Team, db: Database, test_registry: NodeRegistry
) -> None:
    workspace = uuid.UUID(team.workspace_id)
    account = new_account_id()
    await connect(db, workspace, account)
    flow_id, execution_id = await park(db, workspace, account, "7001")
    # the outsider's workspace waits for the same contact id on an account of its own
    other_account = new_account_id()
    await connect(db, uuid.UUID(team.other_workspace_id), other_account)
    await park(db, uuid.UUID(team.other_workspace_id), other_account, "7001")

    [event_id] = await deliver(
        db, build_dm("ana@example.com", account_id=account, sender_id="7001")
    )
    await drain(db, test_registry)

    async with db.sessionmaker() as session:
        execution = await session.get(FlowExecution, execution_id)
    assert execution is not None
    assert (execution.status, execution.attempt, execution.lease_until) == ("queued", 0, None)
    listed = await client.get(
        f"/api/workspaces/{team.workspace_id}/events",
        params={"outcome": "resumed"},
        headers=team.viewer.headers,
    )
    assert [e["id"] for e in listed.json()["items"]] == [str(event_id)]
    [flow] = listed.json()["items"][0]["flows"]
    assert flow["resumed"] is True and flow["ran"] is False
    assert (flow["flow_id"], flow["execution_id"], flow["code"]) == (
        str(flow_id),
        str(execution_id),
        "resumed_wait",
    )
    not_run = await client.get(
        f"/api/workspaces/{team.workspace_id}/events",
        params={"outcome": "not_run"},
        headers=team.viewer.headers,
    )
    assert str(event_id) not in [e["id"] for e in not_run.json()["items"]]

    waits = await client.get(
        WAITS.format(team.workspace_id), params={"status": "answered"}, headers=team.viewer.headers
    )
    [wait] = waits.json()["items"]
    assert wait["reply"]["text"] == "ana@example.com" and wait["event_id"] == str(event_id)
    # the other workspace's wait is untouched and invisible here
    theirs = await client.get(WAITS.format(team.other_workspace_id), headers=team.outsider.headers)
    assert [w["status"] for w in theirs.json()["items"]] == ["waiting"]
    assert (
        await client.get(WAITS.format(team.other_workspace_id), headers=team.viewer.headers)
    ).status_code == 404


async def test_a_global_keyword_cancels_the_wait_instead_of_answering_it(
    team: Team, db: Database, test_registry: NodeRegistry
) -> None:
    workspace = uuid.UUID(team.workspace_id)
    account = new_account_id()
    await connect(db, workspace, account)
    _, execution_id = await park(db, workspace, account, "7002")
    async with db.sessionmaker() as session:
        session.add(GlobalKeyword(workspace_id=workspace, keyword="stop"))
        await session.commit()
    await deliver(db, build_dm("Stop", account_id=account, sender_id="7002"))
    await drain(db, test_registry)
    async with db.sessionmaker() as session:
        execution = await session.get(FlowExecution, execution_id)
        assert execution is not None
        assert execution.status == "cancelled"
        assert "global keyword 'stop'" in (execution.error or "")


async def test_cancelling_a_waiting_run_ends_its_wait(
    client: httpx.AsyncClient, team: Team, db: Database, test_registry: NodeRegistry
) -> None:
    workspace = uuid.UUID(team.workspace_id)
    account = new_account_id()
    await connect(db, workspace, account)
    _, execution_id = await park(db, workspace, account, "7003")
    cancelled = await client.post(
        f"/api/workspaces/{team.workspace_id}/executions/{execution_id}/cancel",
        headers=team.editor.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    # the contact's reply then answers nothing
    await deliver(db, build_dm("late@example.com", account_id=account, sender_id="7003"))
    await drain(db, test_registry)
    waits = await client.get(
        WAITS.format(team.workspace_id), params={"status": "cancelled"}, headers=team.viewer.headers
    )
    assert [w["execution_id"] for w in waits.json()["items"]] == [str(execution_id)]
    async with db.sessionmaker() as session:
        execution = await session.get(FlowExecution, execution_id)
        assert execution is not None and execution.status == "cancelled"
