"""End-to-end fixtures: the real stack (API and web app under uvicorn, a worker, the test
Prefect server) on a fresh SQLite database, and headless Chromium driven by Playwright.

``stack`` is session-scoped and shared by every e2e test; ``page`` is a fresh browser context
per test. Screenshots go to ``test-artifacts/e2e/<test name>/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from socialflow.stack import ManagedProcess, api_server, worker_process
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.asgi_server import serve_app
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = Path(os.environ.get("SOCIALFLOW_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the web app in headless Chromium")


@dataclass
class Stack:
    """A running stack: where the app answers and where its processes log."""

    base_url: str
    database_url: str
    log_dir: Path
    env: dict[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)
    #: the Graph API emulator the stack's Facebook Login talks to
    emulator: GraphEmulator | None = None

    def client(self) -> httpx.Client:
        """An HTTP client for the API (bearer auth is added by ``sign_up``)."""
        return httpx.Client(base_url=self.base_url, timeout=30)

    def logs(self) -> str:
        """The tail of every process log, for failure messages."""
        return "\n".join(f"--- {p.name}\n{p.log_tail(40)}" for p in self.processes)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API + web app and a worker on a fresh SQLite database, using the test Prefect server."""
    index = DIST / "index.html"
    if not index.is_file():
        pytest.fail(f"{index} is missing: build the web app first (make frontend)")
    home = tmp_path_factory.mktemp("e2e-stack")
    port = free_port()
    emulator = GraphEmulator().start()
    database_url = f"sqlite+aiosqlite:///{home / 'socialflow.db'}"
    env = {
        "SOCIALFLOW_ENVIRONMENT": "test",
        "SOCIALFLOW_SECRET_KEY": "e2e-secret-key-that-is-long-enough-" + uuid.uuid4().hex,
        "SOCIALFLOW_DATABASE_URL": database_url,
        "SOCIALFLOW_DATA_DIR": str(home),
        "SOCIALFLOW_API_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SOCIALFLOW_HTTP_ALLOWED_HOSTS": json.dumps(["127.0.0.1"]),
        "SOCIALFLOW_AUTH_LOGIN_ATTEMPTS_PER_IP": "100000",
        # `socialflow simulate` signs with this too (Instagram webhooks are checked against it)
        "SOCIALFLOW_INSTAGRAM_APP_SECRETS": json.dumps(["e2e-instagram-app-secret"]),
        "PREFECT_API_URL": os.environ["PREFECT_API_URL"],
        # Facebook Login against the Graph API emulator (Instagram Login accounts stay sandboxed)
        "SOCIALFLOW_INSTAGRAM_FACEBOOK_APP_ID": "1234567890123456",
        "SOCIALFLOW_INSTAGRAM_FACEBOOK_APP_SECRET": "e2e-meta-app-secret",
        "SOCIALFLOW_INSTAGRAM_FACEBOOK_DIALOG_URL": emulator.url,
        "SOCIALFLOW_INSTAGRAM_GRAPH_FACEBOOK_URL": emulator.url,
    }
    subprocess.run(
        [sys.executable, "-m", "socialflow.cli", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    log_dir = home / "logs"
    made = Stack(
        base_url=f"http://127.0.0.1:{port}",
        database_url=database_url,
        log_dir=log_dir,
        env=env,
        emulator=emulator,
    )
    made.processes = [
        api_server(log_dir, port=port, env=env),
        worker_process(log_dir, env=env),
    ]
    made.processes[1].argv += ["--poll-interval", "0.2"]  # SQLite: the worker polls
    try:
        for process in made.processes:
            process.start()
            process.wait_healthy(timeout=120)
        yield made
    finally:
        for process in reversed(made.processes):
            process.stop()
        emulator.stop()


def connect_instagram(stack: Stack, workspace_id: str, ig_user_id: str) -> None:
    """Connect a sandboxed Instagram account to a workspace directly in the database, the way
    the connection flow leaves it (Instagram Login cannot run here)."""
    import asyncio

    from socialflow.core.db import Database
    from socialflow.instagram import InstagramAccount

    async def insert() -> None:
        db = Database(stack.database_url)
        try:
            async with db.sessionmaker() as session:
                session.add(
                    InstagramAccount(
                        workspace_id=uuid.UUID(workspace_id),
                        ig_user_id=ig_user_id,
                        username=f"shop_{ig_user_id[-4:]}",
                        login_kind="instagram",
                        credential_id=uuid.uuid4(),
                    )
                )
                await session.commit()
        finally:
            await db.dispose()

    # Playwright's sync API keeps an event loop running in this thread: insert from another
    worker = threading.Thread(target=lambda: asyncio.run(insert()))
    worker.start()
    worker.join(timeout=60)


@dataclass
class Person:
    """A signed-up user with a bearer token for direct API calls."""

    email: str
    headers: dict[str, str]


def sign_up(stack: Stack, email: str | None = None) -> Person:
    """Register a user through the API and get a bearer token for them."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    with stack.client() as http:
        registered = http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        token = http.post("/api/auth/token", data={"username": email, "password": PASSWORD})
        assert token.status_code == 200, token.text
    return Person(email=email, headers={"Authorization": f"Bearer {token.json()['access_token']}"})


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (never a downloaded browser), one per test: Playwright's sync
    API keeps an event loop running while it is open, which async tests cannot share."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Shots:
    """Saves numbered full-page screenshots of a test's key screens."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.png"):
            old.unlink()

    def __call__(self, page: Any, name: str) -> Path:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(ARTIFACTS / request.node.name)


@pytest.fixture
def context(browser: Any, stack: Stack) -> Iterator[Any]:
    """A fresh browser profile at 1280x800 that fails the test on any page error."""
    made = browser.new_context(base_url=stack.base_url, viewport={"width": 1280, "height": 800})
    made.set_default_timeout(20_000)
    errors: list[str] = []
    made.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        yield made
    finally:
        made.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@dataclass
class Sink:
    """A loopback HTTP server that records every request it gets (a webhook's far end)."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            query = request.scope["query_string"].decode()
            path = request.scope["raw_path"].decode() + (f"?{query}" if query else "")
            body = (await request.body()).decode(errors="replace")
            self.received.append({"path": path, "body": body})
            return Response(b'{"ok": true}', media_type="application/json")

        return Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])


@pytest.fixture
def sink() -> Iterator[Sink]:
    made = Sink()
    with serve_app(made.app()) as running:
        made.url = running.url
        yield made
