"""The event log end to end in headless Chromium against the real stack: a comment that the
published flow's keyword filter does not take shows in Events with the reason; the same event
tests the draft (the test panel says the sample would not start the flow, unless filters are
ignored); the user widens the trigger's keyword in the builder, replays the event through the
draft from the event log and reads that the draft now replies; after publishing, the same
comment runs the flow, and Events shows it ran."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, ROOT, Shots, Stack, connect_instagram, sign_up

pytestmark = pytest.mark.e2e

REASON = "filter not matched: `trigger.text` contains 'price' was false for 'hello'"
PRICE_REPLY = {
    "nodes": [
        {
            "id": "comment",
            "kind": "instagram.comment",
            "label": "New comment",
            "config": {"keywords": ["price"]},
            "position": {"x": 60, "y": 120},
        },
        {
            "id": "reply",
            "kind": "instagram.reply_comment",
            "label": "Reply",
            "config": {"message": "Price: 29 €"},
            "position": {"x": 340, "y": 120},
        },
    ],
    "edges": [
        {"source": "comment", "source_port": "event", "target": "reply", "target_port": "in"}
    ],
}


def _simulate_comment(stack: Stack, text: str, ig_user_id: str) -> None:
    simulated = subprocess.run(
        [sys.executable, "-m", "socialflow.cli", "simulate", "comment", text,
         "--url", stack.base_url, "--account", ig_user_id],
        cwd=ROOT,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr


def _within_view(page: Any, node: Any, timeout: float = 5.0) -> bool:
    """Whether the node comes to lie wholly inside the canvas within `timeout` seconds (the
    view may still be moving to it)."""
    deadline = time.monotonic() + timeout
    while True:
        canvas = page.get_by_label("Flow canvas").bounding_box()
        box = node.bounding_box()
        inside = (
            canvas is not None
            and box is not None
            and canvas["x"] <= box["x"]
            and box["x"] + box["width"] <= canvas["x"] + canvas["width"]
            and canvas["y"] <= box["y"]
            and box["y"] + box["height"] <= canvas["y"] + canvas["height"]
        )
        if inside or time.monotonic() > deadline:
            return inside
        page.wait_for_timeout(100)


def test_an_event_the_filter_refused_is_replayed_through_the_edited_draft_then_runs(
    stack: Stack, context: Any, shots: Shots
) -> None:
    editor = sign_up(stack)
    with stack.client() as http:
        ws = http.post("/api/workspaces", json={"name": "Price shop"}, headers=editor.headers)
        assert ws.status_code == 201, ws.text
        workspace_id = ws.json()["id"]
        base = f"/api/workspaces/{workspace_id}/flows"
        flow = http.post(
            base, json={"name": "Price replies", "graph": PRICE_REPLY}, headers=editor.headers
        )
        assert flow.status_code == 201, flow.text
        flow_id = flow.json()["id"]
        published = http.post(f"{base}/{flow_id}/publish", headers=editor.headers)
        assert published.status_code == 201, published.text
    ig_user_id = f"1786{uuid.uuid4().int % 10**13:013d}"
    connect_instagram(stack, workspace_id, ig_user_id)

    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(editor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/flows$"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    expect(page.get_by_text("No events match")).to_be_visible()

    # the comment arrives while the page is open: it appears without a reload, with the reason
    _simulate_comment(stack, "hello", ig_user_id)
    events = page.get_by_role("table", name="Events")
    refused = events.locator("tbody tr", has_text="hello")
    expect(refused).to_have_count(1, timeout=60_000)
    expect(refused).to_contain_text("instagram.comment")
    expect(refused).to_contain_text("nothing ran", timeout=60_000)
    expect(refused).to_contain_text(REASON)
    shots(page, "events-filter-not-matched")

    refused.get_by_role("link", name="hello").click()
    expect(page).to_have_url(re.compile(r"/events/[0-9a-f-]+$"))
    event_id = page.url.rsplit("/", 1)[1]
    outcome = page.get_by_role("table", name="Flows of this event").locator("tbody tr")
    expect(outcome).to_contain_text("Price replies")
    expect(outcome).to_contain_text(REASON)
    expect(page.get_by_label("Payload")).to_contain_text('"text": "hello"')
    expect(page.get_by_label("Raw body")).to_contain_text("hello")
    shots(page, "event-detail")

    # the event as a test sample: the draft's trigger would not take it, unless told to
    outcome.get_by_role("link", name="Test the draft with it").click()
    expect(page).to_have_url(re.compile(rf"/flows/{flow_id}\?event={event_id}$"))
    expect(page.get_by_label("Sample event")).to_have_value(f"event:{event_id}")
    payload = page.get_by_label("Sample payload (JSON)")
    expect(payload).to_have_value(re.compile('"text": "hello"'))
    page.get_by_role("button", name="Run test (sandbox)").click()
    expect(page.get_by_role("alert")).to_have_text(
        f"This sample would not start the flow: {REASON}"
    )
    shots(page, "test-refused-by-filter")
    page.get_by_label("Ignore filters").check()
    expect(page.locator(".test-result")).to_contain_text("completed", timeout=90_000)
    expect(page.get_by_role("alert")).to_have_count(0)
    # editing the loaded event marks the sample as edited
    payload.fill(payload.input_value().replace('"hello"', '"hello there"'))
    expect(page.locator(".badge.edited")).to_have_text("edited")

    # the user lets "hello" comments in, in the draft
    page.get_by_role("tab", name="Node").click()
    page.get_by_test_id("node-comment").click()
    keyword = page.locator("#root_keywords_0")
    expect(keyword).to_have_value("price")
    keyword.fill("hello")
    expect(page.get_by_role("status").filter(has_text="All changes saved")).to_be_visible()

    # and replays the refused event through the draft from the event log
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    events.locator("tbody tr", has_text="hello").get_by_role("link", name="hello").click()
    page.get_by_role("button", name="Replay through the draft").click()
    expect(page).to_have_url(re.compile(rf"/flows/{flow_id}/replays/[0-9a-f-]+$"))
    expect(page.get_by_role("status").filter(has_text="Finished")).to_be_visible(timeout=90_000)
    difference = page.get_by_role("list", name="Difference")
    expect(difference).to_contain_text(f"the published version did not run ({REASON})")
    expect(difference).to_contain_text("the draft now replies 'Price: 29 €'")
    expect(page.get_by_label("Replay summary")).to_contain_text("1 of 1 event")
    expect(page.get_by_role("list", name="Draft sends")).to_contain_text("'Price: 29 €' (sandboxed")
    nodes = page.get_by_role("table", name="Node by node")
    expect(nodes.locator("tr[data-change='added']")).to_have_count(2)
    shots(page, "replay-draft-now-replies")

    page.get_by_role("link", name="Back to the flow").click()
    page.get_by_role("button", name="Publish…").click()
    page.get_by_label("Version note").fill("hello replies")
    page.get_by_role("button", name="Publish new version").click()
    expect(page.get_by_text("v2 live")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Published as version 2")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    expect(events.locator("tbody tr")).to_have_count(1)
    _simulate_comment(stack, "hello", ig_user_id)
    ran = events.locator("tbody tr[data-outcome='ran']", has_text="hello")
    expect(ran).to_have_count(1, timeout=90_000)
    expect(ran).to_contain_text("Price replies")
    expect(events.locator("tbody tr").first).to_have_attribute("data-outcome", "ran")
    shots(page, "events-ran-after-publish")

    ran.get_by_role("link", name="hello").click()
    outcome = page.get_by_role("table", name="Flows of this event").locator("tbody tr")
    expect(outcome).to_have_attribute("data-ran", "true")
    expect(outcome).to_contain_text("v2")
    expect(outcome.locator(".badge").first).to_have_text("completed", timeout=90_000)
    outcome.get_by_role("link", name="the run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+$"))
    expect(page.locator("h1 .badge")).to_have_text("completed")

    # "Run now" of a comment-triggered flow asks which event to start from
    page.goto(f"/w/{workspace_id}/flows/{flow_id}")
    page.get_by_role("button", name="Run now…").click()
    run_now = page.get_by_role("form", name="Run now")
    run_now.get_by_label("Start from").select_option(value=f"event:{event_id}")
    started = run_now.get_by_label("Event payload (JSON)")
    expect(started).to_have_value(re.compile('"text": "hello"'))
    shots(page, "run-now-asks-for-an-event")
    run_now.get_by_role("button", name="Run the live version").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+$"))
    expect(page.locator("h1 .badge")).to_have_text("completed", timeout=90_000)
    expect(page.locator("details.node-run", has_text="Reply")).to_contain_text("completed")

    # the flow's last N events replayed through the draft (now the same as the live version)
    page.goto(f"/w/{workspace_id}/flows/{flow_id}")
    page.get_by_role("button", name="Replay…").click()
    expect(page.get_by_label("Events to replay")).to_have_value("20")
    page.get_by_role("button", name="Replay last 20 events through the draft").click()
    expect(page).to_have_url(re.compile(rf"/flows/{flow_id}/replays/[0-9a-f-]+$"))
    expect(page.get_by_role("status").filter(has_text="Finished")).to_be_visible(timeout=90_000)
    # both "hello" comments, and the run started by hand from one of them (an event too)
    expect(page.get_by_role("article", name="Replayed event hello")).to_have_count(3)
    expect(page.get_by_label("Replay summary")).to_contain_text("of 3 events")
    shots(page, "replay-last-n")

    # a node added from the palette while one is selected follows it, connected and in view,
    # titled by its kind, its description's code spans rendered
    page.goto(f"/w/{workspace_id}/flows/{flow_id}")
    page.get_by_test_id("node-reply").click()
    edges = page.locator(".react-flow__edge")
    expect(edges).to_have_count(1)
    page.get_by_role("button", name="Set values").click()
    added = page.get_by_test_id("node-set")
    expect(added).to_be_visible()
    expect(added.locator(".sf-title")).to_have_text("Set values")
    expect(edges).to_have_count(2)
    expect(page.locator(".react-flow__edge[data-id='reply:result->set:in']")).to_have_count(1)
    assert _within_view(page, added), "the added node was left outside the canvas view"
    description = page.locator(".kind-description")
    expect(description.locator("code")).to_have_text("{{ ... }}")
    expect(description).not_to_contain_text("``")
    shots(page, "node-added-downstream")
