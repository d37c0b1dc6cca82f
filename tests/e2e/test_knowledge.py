"""Knowledge bases end to end in headless Chromium against the real stack: an editor creates a
base, uploads documents through the file picker (opened from the keyboard) and by drag and drop,
sees a refused file explained, watches ingestion finish in the worker and finds the answer to a
question; a viewer of the same workspace gets no way to change anything."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, Shots, Stack, sign_up

pytestmark = pytest.mark.e2e

FAQ = """# Harbour Coffee FAQ

## Opening hours

The Lisbon shop is open from 8 am to 6 pm on weekdays and from 9 am to 2 pm on Saturdays.
It is closed on Sundays and public holidays.

## Shipping

We ship coffee beans to Canada, the United States and every country of the European Union.
Orders to Canada arrive within seven working days; shipping there costs 14 euros.

## Grinding

Beans are ground to order for espresso, filter or French press; say which one at checkout.
"""

RETURNS = "Returns: unopened bags can be sent back within thirty days for a full refund.\n"

DROP_FILE = """([name, text]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, { type: "text/plain" }));
  return transfer;
}"""


def test_upload_ingest_and_search_a_knowledge_base(
    stack: Stack, browser: Any, context: Any, shots: Shots
) -> None:
    page = context.new_page()
    page.goto("/register")
    page.get_by_label("Email").fill(f"kb-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create your account").click()
    page.get_by_label("Workspace name").fill("Harbour Coffee")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]+/flows$"))
    workspace_id = page.url.split("/w/")[1].split("/")[0]

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge").click()
    expect(page.get_by_role("heading", name="Knowledge bases")).to_be_visible()
    expect(page.get_by_text("No knowledge bases yet.")).to_be_visible()
    shots(page, "knowledge-empty")

    page.get_by_role("button", name="New knowledge base").click()
    page.get_by_label("Name").fill("Shop FAQ")
    page.get_by_label("Description").fill("What customers ask in comments and DMs")
    page.get_by_role("button", name="Create knowledge base").click()
    expect(page).to_have_url(re.compile(r"/knowledge/[0-9a-f-]+$"))
    base_url = page.url
    expect(page.get_by_role("heading", name="Shop FAQ")).to_be_visible()
    expect(page.get_by_text("No documents yet")).to_be_visible()

    # the drop zone is a button: Enter opens the file picker
    zone = page.get_by_role("button", name=re.compile("Drop documents here"))
    with page.expect_file_chooser() as chooser:
        zone.focus()
        page.keyboard.press("Enter")
    chooser.value.set_files(
        [
            {"name": "faq.md", "mimeType": "text/markdown", "buffer": FAQ.encode()},
            {"name": "setup.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00"},
        ]
    )
    uploads = page.get_by_role("list", name="Uploads")
    faq_upload = uploads.get_by_role("listitem").filter(has_text="faq.md")
    expect(faq_upload).to_contain_text("Uploaded")
    expect(page.get_by_label("Upload of faq.md")).to_have_attribute("value", "100")
    refused = uploads.get_by_role("listitem").filter(has_text="setup.exe")
    expect(refused).to_contain_text("has an unsupported type; allowed extensions:")
    expect(refused).to_contain_text(".md")

    zone.dispatch_event(
        "drop", {"dataTransfer": page.evaluate_handle(DROP_FILE, ["returns.txt", RETURNS])}
    )
    expect(uploads.get_by_role("listitem").filter(has_text="returns.txt")).to_contain_text(
        "Uploaded"
    )
    shots(page, "uploads-finished")

    documents = page.get_by_role("table", name="Documents")
    faq_row = documents.locator("tbody tr", has_text="faq.md")
    expect(faq_row).to_have_attribute("data-status", "ready", timeout=120_000)
    expect(faq_row.locator(".doc-status")).to_contain_text(re.compile(r"ready\s*\d+ chunks?"))
    expect(faq_row).to_contain_text("Markdown")
    returns_row = documents.locator("tbody tr", has_text="returns.txt")
    expect(returns_row).to_have_attribute("data-status", "ready", timeout=120_000)
    expect(documents.locator("tbody tr")).to_have_count(2)
    expect(documents).not_to_contain_text("setup.exe")
    shots(page, "documents-ready")

    page.get_by_role("textbox", name="Question").fill("How long does delivery to Canada take?")
    page.get_by_role("button", name="Search", exact=True).click()
    best = page.get_by_role("list", name="Search results").get_by_role("listitem").first
    expect(best).to_contain_text("Orders to Canada arrive within seven working days")
    expect(best).to_contain_text("faq.md")
    expect(best).to_contain_text(re.compile(r"score \d\.\d+"))
    shots(page, "search-results")

    # a viewer reads and searches, and finds no control that changes the base
    viewer = sign_up(stack)
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "sf_csrf")
    added = page.request.post(
        f"/api/workspaces/{workspace_id}/members",
        data={"email": viewer.email, "role": "viewer"},
        headers={"X-CSRF-Token": csrf},
    )
    assert added.status == 201, added.text()
    seen = browser.new_context(base_url=stack.base_url, viewport={"width": 1280, "height": 800})
    try:
        other = seen.new_page()
        other.goto("/signin")
        other.get_by_label("Email").fill(viewer.email)
        other.get_by_label("Password").fill(PASSWORD)
        other.get_by_role("button", name="Sign in").click()
        expect(other.locator(".topbar .role")).to_have_text("viewer")
        other.goto(base_url)
        expect(other.get_by_role("table", name="Documents")).to_contain_text("faq.md")
        expect(other.get_by_role("button", name=re.compile("Drop documents"))).to_have_count(0)
        expect(other.get_by_label("Documents to upload")).to_have_count(0)
        expect(other.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
        expect(other.get_by_role("textbox", name="Question")).to_be_visible()
        shots(other, "viewer-knowledge-base")
        other.get_by_role("link", name="← Knowledge bases").click()
        expect(other.get_by_role("table", name="Knowledge bases")).to_contain_text("Shop FAQ")
        expect(other.get_by_role("button", name="New knowledge base")).to_have_count(0)
        expect(other.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
        shots(other, "viewer-knowledge-bases")
    finally:
        seen.close()
