"""Contacts end to end in headless Chromium against the real stack: a DM to a connected
account makes its sender a contact, the published flow tags them, the person on the Contacts
page tags them too (bulk), and their profile shows the tags and the timeline of the message
and the run it started."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, ROOT, Shots, Stack, connect_instagram, sign_up

pytestmark = pytest.mark.e2e

TAG_ON_DM = {
    "nodes": [
        {"id": "dm", "kind": "instagram.dm", "label": "New DM", "config": {}},
        {
            "id": "tag",
            "kind": "contact.add_tag",
            "label": "Tag as lead",
            "config": {"tags": ["lead"]},
        },
    ],
    "edges": [{"source": "dm", "source_port": "event", "target": "tag", "target_port": "in"}],
}


def _simulate_dm(stack: Stack, text: str, ig_user_id: str) -> None:
    simulated = subprocess.run(
        [sys.executable, "-m", "socialflow.cli", "simulate", "dm", text,
         "--url", stack.base_url, "--account", ig_user_id],
        cwd=ROOT,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr


def test_a_person_who_wrote_appears_is_tagged_and_has_a_timeline(
    stack: Stack, context: Any, shots: Shots
) -> None:
    admin = sign_up(stack)
    with stack.client() as http:
        ws = http.post("/api/workspaces", json={"name": "Contact shop"}, headers=admin.headers)
        assert ws.status_code == 201, ws.text
        workspace_id = ws.json()["id"]
        base = f"/api/workspaces/{workspace_id}/flows"
        flow = http.post(
            base, json={"name": "Tag leads", "graph": TAG_ON_DM}, headers=admin.headers
        )
        assert flow.status_code == 201, flow.text
        published = http.post(f"{base}/{flow.json()['id']}/publish", headers=admin.headers)
        assert published.status_code == 201, published.text
    ig_user_id = f"1787{uuid.uuid4().int % 10**13:013d}"
    connect_instagram(stack, workspace_id, ig_user_id)

    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/flows$"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    expect(page.get_by_text("No contacts match")).to_be_visible()

    # the message arrives while the page is open: its sender appears, tagged by the flow
    _simulate_dm(stack, "hello from the e2e test", ig_user_id)
    table = page.get_by_role("table", name="Contacts")
    row = table.locator("tbody tr")
    expect(row).to_have_count(1, timeout=60_000)
    expect(row).to_contain_text("Direct message")
    expect(row).to_contain_text("open, 24 h left")
    expect(row).to_contain_text("lead", timeout=60_000)
    shots(page, "contact-appeared")

    # a person tags them from the list
    row.get_by_role("checkbox").check()
    page.get_by_role("textbox", name="Tags to add or remove").fill("vip, e2e")
    page.get_by_role("button", name="Add tags").click()
    expect(page.get_by_text("1 contacts changed")).to_be_visible()
    expect(row).to_contain_text("vip")
    expect(row).to_contain_text("e2e")

    # the profile shows the tags and the timeline: the message in, the run it started
    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/contacts/[0-9a-f-]+$"))
    tags = page.get_by_label("Tags", exact=True)
    for tag in ("e2e", "lead", "vip"):
        expect(tags).to_contain_text(tag)
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline.locator("li[data-type=event]")).to_contain_text(
        "dm received: hello from the e2e test"
    )
    expect(timeline.locator("li[data-type=run]")).to_contain_text(
        "ran flow Tag leads (completed)", timeout=60_000
    )
    shots(page, "contact-profile")

    # and the list filters by the tag added here
    page.get_by_role("link", name="Contacts").first.click()
    page.get_by_label("Tag", exact=True).fill("vip")
    expect(page.get_by_role("table", name="Contacts").locator("tbody tr")).to_have_count(1)
    page.get_by_label("Tag", exact=True).fill("nobody-has-this")
    expect(page.get_by_text("No contacts match")).to_be_visible()
