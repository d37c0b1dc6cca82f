"""The content calendar end to end in headless Chromium: a carousel written and scheduled in the
calendar is published at its time by a worker against the Graph API emulator (which fetches
each image by its signed link from the app, as Meta does) and shows published with its
permalink; a post with a 3:1 image is refused before scheduling with the reason.

A stack of its own (API, worker, a publishing work pool of its own on the test Prefect server)
whose Graph hosts are the emulator; the session's stack talks to no emulator."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from socialflow.stack import api_server, worker_process
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.e2e.conftest import DIST, PASSWORD, ROOT, Shots, Stack
from tests.fixtures.media import jpeg
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def calendar_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, GraphEmulator]]:
    if not (DIST / "index.html").is_file():
        pytest.fail(f"{DIST / 'index.html'} is missing: build the web app first (make frontend)")
    emulator = GraphEmulator().start()
    home = tmp_path_factory.mktemp("e2e-calendar")
    port = free_port()
    database_url = f"sqlite+aiosqlite:///{home / 'socialflow.db'}"
    env = {
        "SOCIALFLOW_ENVIRONMENT": "test",
        "SOCIALFLOW_SECRET_KEY": "e2e-calendar-secret-key-long-enough-" + uuid.uuid4().hex,
        "SOCIALFLOW_DATABASE_URL": database_url,
        "SOCIALFLOW_DATA_DIR": str(home),
        "SOCIALFLOW_API_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SOCIALFLOW_AUTH_LOGIN_ATTEMPTS_PER_IP": "100000",
        "SOCIALFLOW_INSTAGRAM_GRAPH_INSTAGRAM_URL": emulator.url,
        "SOCIALFLOW_INSTAGRAM_GRAPH_FACEBOOK_URL": emulator.url,
        "SOCIALFLOW_PUBLISHING_WORK_POOL": f"socialflow-publishing-e2e-{uuid.uuid4().hex[:8]}",
        "PREFECT_API_URL": os.environ["PREFECT_API_URL"],
    }
    subprocess.run(
        [sys.executable, "-m", "socialflow.cli", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    made = Stack(
        base_url=f"http://127.0.0.1:{port}",
        database_url=database_url,
        log_dir=home / "logs",
        env=env,
    )
    made.processes = [
        api_server(made.log_dir, port=port, env=env),
        worker_process(made.log_dir, env=env),
    ]
    made.processes[1].argv += ["--poll-interval", "0.2"]
    try:
        for process in made.processes:
            process.start()
            process.wait_healthy(timeout=120)
        yield made, emulator
    finally:
        for process in reversed(made.processes):
            process.stop()
        emulator.stop()


def connect_live_account(stack: Stack, emulator: GraphEmulator, workspace_id: str) -> str:
    """A live Instagram account of the workspace, its token sealed as the connection flow
    leaves it, known to the emulator; returns its ig_user_id."""
    import socialflow.api.models  # noqa: F401 - the tables the credential's key names
    from socialflow.core.credentials import (
        Credential,
        InstagramSecret,
        key_wrapper,
        seal_credential,
    )
    from socialflow.core.db import Database
    from socialflow.core.settings import Settings
    from socialflow.instagram import InstagramAccount

    ig_user_id = f"1784{uuid.uuid4().int % 10**13:013d}"
    token = f"IGQ-e2e-{uuid.uuid4().hex}"
    emulator.state.add_account(ig_user_id, "calendar_shop", token)
    settings = Settings(
        environment="test",
        secret_key=stack.env["SOCIALFLOW_SECRET_KEY"],
        database={"url": stack.database_url},
    )

    async def insert() -> None:
        db = Database(stack.database_url)
        try:
            async with db.sessionmaker() as session:
                credential = Credential(
                    workspace_id=uuid.UUID(workspace_id), name="instagram", kind="instagram"
                )
                seal_credential(
                    credential, InstagramSecret(access_token=token), key_wrapper(settings)
                )
                session.add(credential)
                await session.flush()
                session.add(
                    InstagramAccount(
                        workspace_id=uuid.UUID(workspace_id),
                        ig_user_id=ig_user_id,
                        username="calendar_shop",
                        login_kind="instagram",
                        credential_id=credential.id,
                        mode="live",
                    )
                )
                await session.commit()
        finally:
            await db.dispose()

    # Playwright's sync API keeps an event loop running in this thread: insert from another
    worker = threading.Thread(target=lambda: asyncio.run(insert()))
    worker.start()
    worker.join(timeout=60)
    return ig_user_id


def files(*images: bytes) -> list[dict[str, Any]]:
    return [
        {"name": f"photo-{n}.jpg", "mimeType": "image/jpeg", "buffer": data}
        for n, data in enumerate(images)
    ]


def test_a_carousel_scheduled_in_the_calendar_is_published_at_its_time(
    calendar_stack: tuple[Stack, GraphEmulator], browser: Any, shots: Shots
) -> None:
    stack, emulator = calendar_stack
    context = browser.new_context(
        base_url=stack.base_url, viewport={"width": 1280, "height": 900}, timezone_id="UTC"
    )
    context.set_default_timeout(20_000)
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    page = context.new_page()
    page.goto("/register")
    page.get_by_label("Email").fill(f"planner-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create your account").click()
    page.get_by_label("Workspace name").fill("Planner")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]+/flows$"))
    workspace_id = page.url.split("/w/")[1].split("/")[0]
    ig_user_id = connect_live_account(stack, emulator, workspace_id)

    page.goto(f"/w/{workspace_id}/calendar")
    form = page.get_by_role("form", name="New post")
    expect(form.get_by_label("Account")).to_contain_text("@calendar_shop")

    # a 3:1 image: refused before scheduling, with the reason
    form.get_by_label("Type").select_option("image")
    form.get_by_label("Media").set_input_files(files(jpeg(3000, 1000)))
    when = datetime.now(UTC) + timedelta(minutes=30)
    form.get_by_label("Publish at").fill(when.strftime("%Y-%m-%dT%H:%M:%S"))
    form.get_by_role("button", name="Schedule").click()
    problems = form.get_by_role("list", name="Problems")
    expect(form.get_by_role("status")).to_contain_text("saved as a draft")
    expect(problems).to_contain_text("3000x1000")
    expect(problems).to_contain_text("4:5")
    shots(page, "wide-image-refused")

    # a carousel of three, due in a few seconds
    form.get_by_label("Type").select_option("carousel")
    form.get_by_label("Caption").fill("Three new colours #launch")
    form.get_by_label("Media").set_input_files(
        files(jpeg(1080, 1080), jpeg(1080, 1350), jpeg(1080, 1080))
    )
    due = datetime.now(UTC) + timedelta(seconds=8)
    form.get_by_label("Publish at").fill(due.strftime("%Y-%m-%dT%H:%M:%S"))
    form.get_by_role("button", name="Schedule").click()
    expect(form.get_by_role("status")).to_contain_text("Post scheduled")
    cell = page.locator(f"td[data-day='{due:%Y-%m-%d}']")
    expect(cell.locator(".post-chip.status-scheduled")).to_be_visible()
    cell.scroll_into_view_if_needed()
    shots(page, "carousel-scheduled")

    published = cell.locator(".post-chip.status-published")
    expect(published).to_be_visible(timeout=120_000)
    link = published.get_by_role("link", name="permalink")
    on_meta = [m for m in emulator.state.publishing.media.values() if m["account"] == ig_user_id]
    assert len(on_meta) == 1, on_meta
    assert on_meta[0]["media_type"] == "CAROUSEL_ALBUM"
    assert on_meta[0]["caption"] == "Three new colours #launch"
    expect(link).to_have_attribute("href", on_meta[0]["permalink"])
    # Meta fetched each image from the app by its signed link
    fetched = emulator.state.publishing.fetched
    assert len(fetched) == 3 and all("/api/publishing/media/" in url for url in fetched)
    cell.scroll_into_view_if_needed()
    shots(page, "carousel-published")
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
