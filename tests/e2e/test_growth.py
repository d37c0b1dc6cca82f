"""The comment → DM growth template end to end in headless Chromium, through the real API and
a worker: chosen from the gallery (which creates its email field), the notify URL filled in on
the canvas, published; then a keyword comment gets a private reply with a button, the tap asks
for the email, "nope" is re-asked, a valid email is saved and tagged, and the contact's
profile shows the field, the tag and the timeline."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from socialflow.instagram import build_comment, build_dm, build_postback, post_signed_sync
from tests.e2e.conftest import PASSWORD, Shots, Sink, Stack, connect_instagram, sign_up

pytestmark = pytest.mark.e2e


def deliver(stack: Stack, body: dict[str, Any]) -> None:
    """A signed Instagram webhook to the running API, as Meta sends it."""
    secret = json.loads(stack.env["SOCIALFLOW_INSTAGRAM_APP_SECRETS"])[0]
    answer = post_signed_sync(f"{stack.base_url}/webhooks/instagram", body, secret)
    assert answer.status_code == 200, answer.text


def outbox(stack: Stack, workspace_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    with stack.client() as http:
        found = http.get(
            f"/api/workspaces/{workspace_id}/instagram/outbox",
            params={"limit": 100},
            headers=headers,
        )
    assert found.status_code == 200, found.text
    body = found.json()
    items: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
    return items


def wait_for_sends(
    stack: Stack, workspace_id: str, headers: dict[str, str], count: int
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while True:
        items = outbox(stack, workspace_id, headers)
        if len(items) >= count:
            return items
        assert time.monotonic() < deadline, f"{len(items)} sends, wanted {count}: {items}"
        time.sleep(0.5)


def test_the_growth_template_captures_an_email_from_a_keyword_comment(
    stack: Stack, context: Any, shots: Shots, sink: Sink
) -> None:
    admin = sign_up(stack)
    with stack.client() as http:
        ws = http.post("/api/workspaces", json={"name": "Growth shop"}, headers=admin.headers)
        assert ws.status_code == 201, ws.text
        workspace_id = ws.json()["id"]
    account = f"1789{uuid.uuid4().int % 10**13:013d}"
    connect_instagram(stack, workspace_id, account)

    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/flows$"))
    page.get_by_role("button", name="New flow").click()
    page.locator("label.template", has_text="Comment → DM growth").click()
    page.get_by_role("button", name="Create flow").click()
    expect(page).to_have_url(re.compile(r"/flows/[0-9a-f-]+$"))
    # only the notify URL to fill in
    page.get_by_test_id("node-notify").click()
    url = page.locator("#root_url")
    expect(url).to_have_value("https://example.com/leads")
    url.fill(f"{sink.url}/leads")
    expect(page.get_by_role("status").filter(has_text="All changes saved")).to_be_visible()
    shots(page, "growth-template")
    page.get_by_role("button", name="Publish…").click()
    page.get_by_label("Version note").fill("growth")
    page.get_by_role("button", name="Publish new version").click()
    expect(page.get_by_text("v1 live")).to_be_visible()

    person = f"66{uuid.uuid4().int % 10**10:010d}"
    comment_id = f"1801{uuid.uuid4().int % 10**13:013d}"
    deliver(
        stack,
        build_comment(
            "Guide please!",
            account_id=account,
            from_id=person,
            from_username="ann.growth",
            comment_id=comment_id,
        ),
    )
    sends = wait_for_sends(stack, workspace_id, admin.headers, 2)
    actions = sorted(s["action"] for s in sends)
    assert actions == ["private_reply", "reply_comment"], sends
    deliver(stack, build_postback("SEND_GUIDE", title="Send me the guide", account_id=account,
                                  sender_id=person))  # fmt: skip
    asked = wait_for_sends(stack, workspace_id, admin.headers, 3)
    assert any("What is your email?" in json.dumps(s) for s in asked), asked
    deliver(stack, build_dm("nope", account_id=account, sender_id=person))
    re_asked = wait_for_sends(stack, workspace_id, admin.headers, 4)
    assert any("that is not an email address" in json.dumps(s) for s in re_asked), re_asked
    deliver(stack, build_dm("Ann@Example.com", account_id=account, sender_id=person))
    done = wait_for_sends(stack, workspace_id, admin.headers, 5)
    assert any("on its way to Ann@example.com" in json.dumps(s) for s in done), done
    deadline = time.monotonic() + 60
    while not sink.received:
        assert time.monotonic() < deadline, "the notify URL was not called"
        time.sleep(0.3)
    [lead] = sink.received
    assert lead["path"] == "/leads"
    assert json.loads(lead["body"])["email"] == "Ann@example.com"

    # the contact's profile: the email saved, the tag, the timeline of the conversation
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    row = page.get_by_role("table", name="Contacts").locator("tbody tr")
    expect(row).to_have_count(1, timeout=60_000)
    expect(row).to_contain_text("lead")
    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/contacts/[0-9a-f-]+$"))
    expect(page.get_by_label("Tags", exact=True)).to_contain_text("lead")
    expect(page.get_by_label(re.compile(r"^Email"))).to_have_value("Ann@example.com")
    timeline = page.get_by_role("list", name="Timeline")
    events = timeline.locator("li[data-type=event]")
    expect(events.filter(has_text="comment received: Guide please!")).to_have_count(1)
    expect(events.filter(has_text="received: nope")).to_have_count(1)
    expect(events.filter(has_text="received: Ann@Example.com")).to_have_count(1)
    expect(timeline.locator("li[data-type=run]")).to_contain_text("(completed)", timeout=60_000)
    shots(page, "growth-contact")


def test_a_human_takeover_stops_the_flows_for_that_contact(
    stack: Stack, context: Any, shots: Shots
) -> None:
    admin = sign_up(stack)
    tag_on_dm = {
        "nodes": [
            {"id": "dm", "kind": "instagram.dm", "label": "New DM", "config": {}},
            {"id": "tag", "kind": "contact.add_tag", "label": "Tag", "config": {"tags": ["bot"]}},
        ],
        "edges": [{"source": "dm", "source_port": "event", "target": "tag", "target_port": "in"}],
    }
    with stack.client() as http:
        ws = http.post("/api/workspaces", json={"name": "Live chat"}, headers=admin.headers)
        workspace_id = ws.json()["id"]
        base = f"/api/workspaces/{workspace_id}/flows"
        flow = http.post(base, json={"name": "Bot", "graph": tag_on_dm}, headers=admin.headers)
        assert flow.status_code == 201, flow.text
        published = http.post(f"{base}/{flow.json()['id']}/publish", headers=admin.headers)
        assert published.status_code == 201, published.text
    account = f"1788{uuid.uuid4().int % 10**13:013d}"
    connect_instagram(stack, workspace_id, account)
    person = f"67{uuid.uuid4().int % 10**10:010d}"
    deliver(stack, build_dm("hello bot", account_id=account, sender_id=person))

    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/flows$"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    row = page.get_by_role("table", name="Contacts").locator("tbody tr")
    expect(row).to_have_count(1, timeout=60_000)
    row.get_by_role("link").click()
    automation = page.get_by_label("Automation")
    expect(automation).to_contain_text("on: flows answer this contact")
    page.get_by_label("Take over for").select_option(label="Until released")
    page.get_by_role("button", name="Human takes over").click()
    expect(automation).to_contain_text("paused: a person took over, until released")
    shots(page, "taken-over")

    deliver(stack, build_dm("I want a human", account_id=account, sender_id=person))
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline.locator("li[data-type=event]").filter(has_text="I want a human")).to_have_count(
        1, timeout=60_000
    )
    # one run only (the first message's); the event log says why the second ran nothing
    expect(timeline.locator("li[data-type=run]")).to_have_count(1)
    deadline = time.monotonic() + 60
    while True:
        with stack.client() as http:
            events = http.get(f"/api/workspaces/{workspace_id}/events", headers=admin.headers)
        latest = events.json()["items"][0]
        codes = [f["code"] for f in latest["flows"]]
        if codes == ["human_takeover"]:
            break
        assert time.monotonic() < deadline, latest
        time.sleep(0.5)
    # the person answers from the app, through the ledger (the account is sandboxed here)
    page.get_by_label("Message").fill("Hi, a human here!")
    page.get_by_role("form", name="Reply").get_by_role("button", name="Send").click()
    expect(
        timeline.locator("li[data-type=message]").filter(has_text="Hi, a human here!")
    ).to_contain_text("send dm sandboxed", timeout=30_000)
    page.get_by_role("button", name="Release to the flows").click()
    expect(automation).to_contain_text("on: flows answer this contact")
