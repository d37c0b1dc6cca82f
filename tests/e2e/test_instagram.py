"""Instagram end to end in headless Chromium against the real stack: a keyword auto-reply flow
built from its template answers a simulated, signed comment webhook; the run shows up live and
the send ledger records the reply as sandboxed."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, ROOT, Shots, Stack, connect_instagram

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


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
