"""The event log over REST: every stored event of a workspace with what became of it, the
reason from the code that decided, payloads without secrets, filters, isolation, retention."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from socialflow.core.db import Database
from socialflow.core.safejson import MAX_DEPTH
from socialflow.instagram import build_comment, build_dm
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import FlowExecution, deactivate_flow
from tests.api.conftest import Team, api_settings
from tests.fixtures.flows import publish
from tests.instagram.test_webhook_dispatch import connect, deliver, drain, new_account_id


def comment_flow(keywords: list[str]) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "ig", "kind": "instagram.comment", "config": {"keywords": keywords}},
            {"id": "note", "kind": "data.set", "config": {"values": {"t": "{{ trigger.text }}"}}},
        ],
        "edges": [{"source": "ig", "source_port": "event", "target": "note"}],
    }


HOOK_FLOW = {
    "nodes": [
        {"id": "hook", "kind": "trigger.webhook", "config": {}},
        {"id": "note", "kind": "data.set", "config": {"values": {"t": "x"}}},
    ],
    "edges": [{"source": "hook", "source_port": "event", "target": "note"}],
}


async def events(client: httpx.AsyncClient, team: Team, actor: Any = None, **params: Any) -> Any:
    answer = await client.get(
        f"/api/workspaces/{team.workspace_id}/events",
        params=params,
        headers=(actor or team.viewer).headers,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_each_event_says_whether_it_ran_and_why_not(
    client: httpx.AsyncClient, team: Team, db: Database, test_registry: NodeRegistry
) -> None:
    workspace = uuid.UUID(team.workspace_id)
    settings = api_settings(db.url)
    account = new_account_id()
    await connect(db, workspace, account)
    price_flow, _ = await publish(
        db,
        test_registry,
        settings,
        comment_flow(["price"]),
        name="Price bot",
        workspace_id=workspace,
    )
    paused_flow, _ = await publish(
        db, test_registry, settings, comment_flow([]), name="Paused one", workspace_id=workspace
    )
    gone_flow, _ = await publish(
        db, test_registry, settings, comment_flow([]), name="Deleted one", workspace_id=workspace
    )
    async with db.session() as session:
        await deactivate_flow(flow_id=paused_flow, workspace_id=workspace, session=session)
        await deactivate_flow(
            flow_id=gone_flow, workspace_id=workspace, session=session, remove=True
        )

    [hello] = await deliver(db, build_comment("hello", account_id=account))
    [asks] = await deliver(db, build_comment("What's the PRICE?", account_id=account))
    [own] = await deliver(db, build_comment("Link in bio", account_id=account, from_id=account))
    [dm] = await deliver(db, build_dm("hi there", account_id=account))
    await drain(db, test_registry)

    page = await events(client, team)
    by_id = {item["id"]: item for item in page["items"]}
    assert {str(hello), str(asks), str(own), str(dm)} <= set(by_id)

    missed = by_id[str(hello)]
    assert missed["outcome"] == "not_run"
    assert missed["preview"] == "hello"
    flows = {flow["flow_name"]: flow for flow in missed["flows"]}
    # the deleted flow is offered nothing; the paused one says so
    assert set(flows) == {"Price bot", "Paused one"}
    assert flows["Price bot"]["ran"] is False
    assert flows["Price bot"]["code"] == "filter_not_matched"
    assert flows["Price bot"]["reason"] == (
        "filter not matched: `trigger.text` contains 'price' was false for 'hello'"
    )
    assert flows["Price bot"]["field"] == "trigger.text"
    assert flows["Paused one"]["code"] == "flow_paused"
    assert flows["Paused one"]["reason"] == "the flow is paused"
    assert missed["reason"] in {flows["Price bot"]["reason"], flows["Paused one"]["reason"]}

    ran = by_id[str(asks)]
    assert ran["outcome"] == "ran" and ran["reason"] is None
    [run] = [flow for flow in ran["flows"] if flow["ran"]]
    assert run["flow_id"] == str(price_flow)
    async with db.sessionmaker() as session:
        execution = await session.get(FlowExecution, uuid.UUID(run["execution_id"]))
    assert execution is not None and execution.trigger_event_id == asks
    assert run["execution_status"] == execution.status

    mine = by_id[str(own)]
    assert mine["outcome"] == "not_run"
    assert {flow["code"] for flow in mine["flows"]} == {"own_comment", "flow_paused"}
    assert {flow["reason"] for flow in mine["flows"] if flow["code"] == "own_comment"} == {
        "the account's own comment"
    }
    # no flow of the workspace takes DMs: the event says so
    assert by_id[str(dm)]["flows"] == []
    assert by_id[str(dm)]["reason"] == (
        f"no published flow of this workspace takes instagram.dm events of account {account}"
    )

    # filters
    ran_only = await events(client, team, outcome="ran", account=account)
    assert [item["id"] for item in ran_only["items"]] == [str(asks)]
    not_run = await events(client, team, outcome="not_run", account=account)
    assert {item["id"] for item in not_run["items"]} == {str(hello), str(own), str(dm)}
    of_flow = await events(client, team, flow_id=str(price_flow))
    # the events it took or was offered: the own comment was offered and refused as such
    assert {item["id"] for item in of_flow["items"]} == {str(hello), str(asks), str(own)}
    comments = await events(client, team, kind="instagram.comment", account=account)
    assert comments["total"] == 3
    assert [item["received_at"] for item in comments["items"]] == sorted(
        (item["received_at"] for item in comments["items"]), reverse=True
    )

    detail = await client.get(
        f"/api/workspaces/{team.workspace_id}/events/{hello}", headers=team.viewer.headers
    )
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["payload"]["text"] == "hello"
    # the item of the signed body this event came from, as Meta sent it
    assert body["raw_body"]["value"]["text"] == "hello"
    assert body["sample"]["payload"] == body["payload"]
    assert body["sample"]["kind"] == "instagram.comment"

    # another workspace sees none of it, not even by id
    outsider = await client.get(
        f"/api/workspaces/{team.other_workspace_id}/events", headers=team.outsider.headers
    )
    assert outsider.status_code == 200
    assert not {str(hello), str(asks)} & {item["id"] for item in outsider.json()["items"]}
    peek = await client.get(
        f"/api/workspaces/{team.other_workspace_id}/events/{hello}", headers=team.outsider.headers
    )
    assert peek.status_code == 404
    assert peek.json()["code"] == "event_not_found"
    stranger = await client.get(
        f"/api/workspaces/{team.workspace_id}/events", headers=team.outsider.headers
    )
    assert stranger.status_code == 404


async def test_a_webhook_event_never_shows_a_secret_it_carried(
    client: httpx.AsyncClient, team: Team, db: Database, test_registry: NodeRegistry
) -> None:
    workspace = uuid.UUID(team.workspace_id)
    flow_id, _ = await publish(
        db, test_registry, api_settings(db.url), HOOK_FLOW, name="Hook", workspace_id=workspace
    )
    info = await client.get(
        f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/webhook", headers=team.editor.headers
    )
    assert info.status_code == 200, info.text
    secret = info.json()["secret"]
    body = {
        "text": "order 42",
        "api_key": "sk-live-AAAA",
        "nested": [{"access_token": "EAAB-BBBB", "Authorization": "Bearer CCCC"}],
        "customer": {"password": "DDDD", "name": "Ada"},
    }
    sent = await client.post(
        f"/hooks/{flow_id}", json=body, headers={"X-Socialflow-Secret": secret}
    )
    assert sent.status_code == 202, sent.text
    await drain(db, test_registry)

    page = await events(client, team, flow_id=str(flow_id), source="webhook")
    [item] = page["items"]
    assert item["outcome"] == "ran" and item["kind"] == "webhook.request"
    detail = await client.get(
        f"/api/workspaces/{team.workspace_id}/events/{item['id']}", headers=team.viewer.headers
    )
    assert detail.status_code == 200
    text = detail.text
    for leaked in ("sk-live-AAAA", "EAAB-BBBB", "CCCC", "DDDD", secret):
        assert leaked not in text, leaked
    payload = detail.json()["payload"]
    assert payload["body"]["customer"] == {"password": "[redacted]", "name": "Ada"}
    assert payload["body"]["nested"][0]["access_token"] == "[redacted]"
    assert detail.json()["raw_body"]["api_key"] == "[redacted]"


async def test_bad_filters_are_refused_naming_the_parameter(
    client: httpx.AsyncClient, team: Team
) -> None:
    for params, field in (
        ({"outcome": "maybe"}, "outcome"),
        ({"limit": 0}, "limit"),
        ({"flow_id": "not-a-uuid"}, "flow_id"),
        ({"received_after": "yesterday"}, "received_after"),
    ):
        answer = await client.get(
            f"/api/workspaces/{team.workspace_id}/events",
            params=params,
            headers=team.viewer.headers,
        )
        assert answer.status_code == 422, params
        assert field in answer.text, (params, answer.text)


async def test_a_test_run_applies_the_trigger_filters_unless_told_to_ignore_them(
    client: httpx.AsyncClient, team: Team
) -> None:
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await client.post(
        base, json={"name": "Prices", "graph": comment_flow(["price"])}, headers=team.editor.headers
    )
    assert created.status_code == 201, created.text
    test_url = f"{base}/{created.json()['id']}/test"
    sample = {"kind": "comment", "text": "hello", "comment_id": "1", "account_id": "1784"}

    refused = await client.post(test_url, json={"payload": sample}, headers=team.editor.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "trigger_filter_not_matched"
    reason = "filter not matched: `trigger.text` contains 'price' was false for 'hello'"
    assert refused.json()["details"] == {"reason": reason, "field": "trigger.text"}
    assert reason in refused.json()["message"]

    forced = await client.post(
        test_url, json={"payload": sample, "ignore_filters": True}, headers=team.editor.headers
    )
    assert forced.status_code == 202, forced.text
    assert forced.json()["sandbox"] is True
    matching = await client.post(
        test_url, json={"payload": {**sample, "text": "the price?"}}, headers=team.editor.headers
    )
    assert matching.status_code == 202, matching.text
    # the account's own comment is never a trigger either, as with real events
    own = await client.post(
        test_url,
        json={"payload": {**sample, "text": "price", "is_self": True}},
        headers=team.editor.headers,
    )
    assert own.status_code == 409
    assert own.json()["details"]["reason"] == "the account's own comment"


async def test_a_deep_or_odd_body_never_leaks_a_secret_or_breaks_the_log(
    client: httpx.AsyncClient, team: Team, db: Database, test_registry: NodeRegistry
) -> None:
    """A sender controls the body: nesting it as deep as the route accepts, hiding a token at
    the bottom, or sending bytes that are not JSON must leave the log readable and redacted."""
    workspace = uuid.UUID(team.workspace_id)
    flow_id, _ = await publish(
        db, test_registry, api_settings(db.url), HOOK_FLOW, name="Deep", workspace_id=workspace
    )
    info = await client.get(
        f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/webhook", headers=team.editor.headers
    )
    secret = info.json()["secret"]
    deep: dict[str, Any] = {"access_token": "EAAB-DEEP-SECRET", "text": "bottom"}
    for _ in range(MAX_DEPTH - 2):  # as deep as the route accepts
        deep = {"next": deep}
    sent = await client.post(
        f"/hooks/{flow_id}", json=deep, headers={"X-Socialflow-Secret": secret}
    )
    assert sent.status_code == 202, sent.text
    form = await client.post(
        f"/hooks/{flow_id}",
        content=b"api_key=sk-FORM-SECRET&text=%FF%FE",
        headers={
            "X-Socialflow-Secret": secret,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert form.status_code == 202, form.text
    await drain(db, test_registry)

    page = await events(client, team, flow_id=str(flow_id))
    assert page["total"] == 2
    for item in page["items"]:
        detail = await client.get(
            f"/api/workspaces/{team.workspace_id}/events/{item['id']}",
            headers=team.viewer.headers,
        )
        assert detail.status_code == 200, detail.text
        assert "EAAB-DEEP-SECRET" not in detail.text
        assert "sk-FORM-SECRET" not in detail.text
