"""Instagram end to end in headless Chromium against the real stack: a keyword auto-reply flow
built from its template answers a simulated, signed comment webhook; the run shows up live and
the send ledger records the reply as sandboxed. The builder's test panel runs a draft on a sample
comment and shows what the run would have sent."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, ROOT, Shots, Stack, connect_instagram, sign_up

pytestmark = pytest.mark.e2e


def test_keyword_comment_is_answered_in_the_sandbox_and_ledgered(
    stack: Stack, context: Any, shots: Shots
) -> None:
    page = context.new_page()
    page.goto("/register")
    page.get_by_label("Email").fill(f"shop-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create your account").click()
    page.get_by_label("Workspace name").fill("Shop")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]+/flows$"))
    workspace_id = page.url.split("/w/")[1].split("/")[0]

    ig_user_id = f"1784{uuid.uuid4().int % 10**13:013d}"
    connect_instagram(stack, workspace_id, ig_user_id)
    page.goto(f"/w/{workspace_id}/instagram")
    accounts = page.get_by_role("table", name="Instagram accounts")
    expect(accounts).to_contain_text(ig_user_id)
    expect(accounts).to_contain_text("sandbox")
    expect(page.get_by_text("Nothing in the ledger yet")).to_be_visible()
    shots(page, "instagram-account-connected")

    page.goto(f"/w/{workspace_id}/flows")
    page.get_by_role("button", name="New flow").click()
    page.locator("label.template", has_text="Comment auto-reply").click()
    page.get_by_role("button", name="Create flow").click()
    expect(page).to_have_url(re.compile(r"/flows/[0-9a-f-]+$"))
    page.get_by_test_id("node-comment").click()
    keyword = page.locator("#root_keywords_0")
    expect(keyword).to_have_value("price")
    keyword.fill("discount")
    expect(page.get_by_role("status").filter(has_text="All changes saved")).to_be_visible()
    shots(page, "keyword-changed")
    page.get_by_role("button", name="Publish…").click()
    page.get_by_label("Version note").fill("discount replies")
    page.get_by_role("button", name="Publish new version").click()
    expect(page.get_by_text("v1 live")).to_be_visible()

    runs = context.new_page()
    runs.goto(f"/w/{workspace_id}/runs")
    expect(runs.get_by_role("status").filter(has_text="Live")).to_be_visible()
    expect(runs.locator("tr[data-sandbox='false']")).to_have_count(0)

    simulated = subprocess.run(
        [sys.executable, "-m", "socialflow.cli", "simulate", "comment",
         "Is there a discount today?", "--url", stack.base_url, "--account", ig_user_id],
        cwd=ROOT,
        env={**_environ(), **stack.env},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr

    row = runs.locator("tr[data-status='completed']")
    expect(row).to_be_visible(timeout=90_000)
    expect(row).to_contain_text("Comment auto-reply")
    shots(runs, "run-completed-live")

    page.goto(f"/w/{workspace_id}/instagram")
    ledger = page.get_by_role("table", name="Send ledger")
    entry = ledger.locator("tbody tr").first
    expect(entry).to_contain_text("sandboxed", timeout=30_000)
    expect(entry).to_contain_text("Thanks @")
    expect(entry).to_contain_text("Comment auto-reply")
    entry.click()
    expect(ledger.locator("pre")).to_contain_text("Thanks @simulated.user")
    shots(page, "ledger-sandboxed-reply")


AUTO_REPLY = {
    "nodes": [
        {
            "id": "comment",
            "kind": "instagram.comment",
            "label": "New comment",
            "config": {"keywords": ["discount"]},
            "position": {"x": 60, "y": 120},
        },
        {
            "id": "reply",
            "kind": "instagram.reply_comment",
            "label": "Reply",
            "config": {"message": "Thanks @{{ trigger.from_username }}! Codes are in your DMs."},
            "position": {"x": 340, "y": 120},
        },
    ],
    "edges": [
        {"source": "comment", "source_port": "event", "target": "reply", "target_port": "in"}
    ],
}


def test_a_draft_is_tested_on_a_sample_comment_and_shows_what_it_would_send(
    stack: Stack, context: Any, shots: Shots
) -> None:
    editor = sign_up(stack)
    with stack.client() as http:
        ws = http.post("/api/workspaces", json={"name": "Sample shop"}, headers=editor.headers)
        assert ws.status_code == 201, ws.text
        workspace_id = ws.json()["id"]
        flow = http.post(
            f"/api/workspaces/{workspace_id}/flows",
            json={"name": "Discount replies", "graph": AUTO_REPLY},
            headers=editor.headers,
        )
        assert flow.status_code == 201, flow.text
        flow_id = flow.json()["id"]
    ig_user_id = f"1785{uuid.uuid4().int % 10**13:013d}"
    connect_instagram(stack, workspace_id, ig_user_id)

    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(editor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/flows$"))
    page.goto(f"/w/{workspace_id}/flows/{flow_id}")
    expect(page.get_by_test_id("node-reply")).to_be_visible()
    page.get_by_role("tab", name="Test").click()

    # the trigger's own kind of sample is preselected; the others stay one choice away
    picker = page.get_by_label("Sample event")
    expect(picker).to_have_value("0")
    picker.select_option(label="A direct message")
    payload = page.get_by_label("Sample payload (JSON)")
    expect(payload).to_have_value(re.compile("Do you ship to Canada"))
    picker.select_option(label="A comment asking for the price")
    expect(payload).to_have_value(re.compile("price please"))
    sample = json.loads(payload.input_value())
    assert sample["account_id"] == ig_user_id, sample
    sample["text"] = "Is there a discount on this one?"
    payload.fill(json.dumps(sample, indent=2))
    shots(page, "sample-comment-edited")

    page.get_by_role("button", name="Run test (sandbox)").click()
    result = page.locator(".test-result")
    expect(result).to_contain_text("completed", timeout=90_000)
    actions = page.get_by_role("region", name="Instagram actions of this test")
    entry = actions.get_by_role("listitem")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("reply_comment")
    expect(entry).to_contain_text("sandboxed")
    expect(entry).to_contain_text("Thanks @simulated.user! Codes are in your DMs.")
    expect(page.get_by_test_id("node-reply")).to_have_class(re.compile(r"\brun-completed\b"))
    shots(page, "test-ledger-sandboxed")

    # without the reply node the same comment leads to nothing that would be sent
    page.get_by_test_id("node-reply").click()
    page.keyboard.press("Delete")
    expect(page.get_by_test_id("node-reply")).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="All changes saved")).to_be_visible()
    page.get_by_role("tab", name="Test").click()
    payload.fill(json.dumps(sample, indent=2))
    page.get_by_role("button", name="Run test (sandbox)").click()
    expect(actions.get_by_text("Nothing would be sent.")).to_be_visible(timeout=90_000)
    expect(result).to_contain_text("completed")
    shots(page, "test-nothing-sent")


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
