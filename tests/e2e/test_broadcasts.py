"""Broadcasts end to end in headless Chromium against the real stack: a broadcast to a tag
whose contacts are partly outside Meta's window is previewed with the reasons, sent by the
worker as a Prefect run, and the page shows who got it, who was skipped and why."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, Shots, Stack, connect_instagram, sign_up

pytestmark = pytest.mark.e2e


def _seed_contacts(stack: Stack, workspace_id: str, ig_user_id: str) -> None:
    """Four contacts tagged vip (two inside the window, one 30 h ago, one who never wrote)
    and one inside the window without the tag."""
    from socialflow.contacts import Contact, ContactTag, ContactTagLink, contact_id
    from socialflow.core.db import Database, utcnow

    ages: list[tuple[str, float | None, bool]] = [
        ("anna", 1, True),
        ("ben", 3, True),
        ("carl", 30, True),
        ("dora", None, True),
        ("emil", 1, False),
    ]

    async def insert() -> None:
        db = Database(stack.database_url)
        ws = uuid.UUID(workspace_id)
        try:
            async with db.sessionmaker() as session:
                tag = ContactTag(workspace_id=ws, name="vip")
                session.add(tag)
                await session.flush()
                for n, (name, hours, tagged) in enumerate(ages):
                    igsid = f"7799{n:010d}{uuid.uuid4().int % 1000:03d}"
                    cid = contact_id(ws, ig_user_id, igsid)
                    last = None if hours is None else utcnow() - timedelta(hours=hours)
                    session.add(
                        Contact(
                            id=cid,
                            workspace_id=ws,
                            account_id=ig_user_id,
                            igsid=igsid,
                            username=name,
                            source="dm",
                            last_inbound_at=last,
                        )
                    )
                    await session.flush()
                    if tagged:
                        session.add(ContactTagLink(contact_id=cid, tag_id=tag.id))
                await session.commit()
        finally:
            await db.dispose()

    # Playwright's sync API keeps an event loop running in this thread: insert from another
    worker = threading.Thread(target=lambda: asyncio.run(insert()))
    worker.start()
    worker.join(timeout=60)


def test_a_broadcast_to_a_tag_shows_who_was_skipped_and_why(
    stack: Stack, context: Any, shots: Shots
) -> None:
    admin = sign_up(stack)
    with stack.client() as http:
        ws = http.post("/api/workspaces", json={"name": "Broadcast shop"}, headers=admin.headers)
        assert ws.status_code == 201, ws.text
        workspace_id = ws.json()["id"]
    ig_user_id = f"1788{uuid.uuid4().int % 10**13:013d}"
    connect_instagram(stack, workspace_id, ig_user_id)
    _seed_contacts(stack, workspace_id, ig_user_id)

    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/flows$"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Broadcasts").click()

    form = page.get_by_role("form", name="New broadcast")
    form.get_by_label("Name").fill("Spring sale")
    form.get_by_label("Message").fill("Our spring sale starts now!")
    form.get_by_label("Any of the tags").fill("vip")
    form.get_by_role("button", name="Preview").click()
    preview = page.get_by_label("Preview")
    expect(preview).to_contain_text("2 of 4 contacts will receive it")
    expect(preview).to_contain_text("Last message 24 h to 7 days ago (a person only): 1")
    expect(preview).to_contain_text("Never messaged the account: 1")
    shots(page, "broadcast-preview")

    form.get_by_role("button", name="Send now").click()
    progress = page.get_by_label("Broadcast progress")
    expect(progress).to_contain_text("done", timeout=90_000)
    expect(progress).to_contain_text("sent 2")
    recipients = progress.get_by_role("table", name="Recipients")
    expect(recipients.locator("tr")).to_have_count(4, timeout=30_000)
    expect(recipients.locator("tr", has_text="carl")).to_contain_text(
        "Last message 24 h to 7 days ago"
    )
    expect(recipients.locator("tr", has_text="dora")).to_contain_text("Never messaged")
    expect(recipients.locator("tr", has_text="anna")).to_contain_text("sent")
    expect(recipients).not_to_contain_text("emil")
    shots(page, "broadcast-done")
