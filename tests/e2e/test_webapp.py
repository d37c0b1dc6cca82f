"""The web app's static serving: files of the build, the SPA fallback for client routes, and
never a page where the API, hooks, WebSocket, health or docs routes live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from socialflow.api.app import create_app
from socialflow.api.webapp import mount_webapp
from socialflow.core.settings import Settings

INDEX = "<!doctype html><div id=root></div><script type=module src=/assets/app.js></script>"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    settings = Settings(
        environment="test",
        secret_key="webapp-test-secret-key-long-enough",
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"},
    )
    app = create_app(settings)
    dist = tmp_path / "dist"
    mount_webapp(app, dist)
    # no lifespan: static serving needs neither the database nor Prefect
    yield TestClient(app), dist


def build(dist: Path) -> None:
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "app.js").write_text("console.log('app')")
    (dist / "robots.txt").write_text("User-agent: *")


def test_without_a_build_the_root_says_how_to_make_one(
    client: tuple[TestClient, Path],
) -> None:
    http, _ = client
    root = http.get("/")
    assert root.status_code == 503
    assert "make frontend" in root.text
    assert (http.get("/w/1/flows")).status_code == 404
    assert (http.get("/healthz")).status_code == 200


def test_files_and_client_routes_are_served(client: tuple[TestClient, Path]) -> None:
    http, dist = client
    build(dist)
    for path in ("/", "/signin", "/w/abc/flows/def", "/w/abc/runs"):
        page = http.get(path)
        assert page.status_code == 200, path
        assert page.text == INDEX
        assert page.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in page.headers["content-security-policy"]
    script = http.get("/assets/app.js")
    assert script.status_code == 200
    assert script.text == "console.log('app')"
    assert "immutable" in script.headers["cache-control"]
    assert (http.get("/robots.txt")).text == "User-agent: *"
    assert (http.head("/w/abc/flows")).status_code == 200


def test_missing_files_and_reserved_paths_are_never_the_app(
    client: tuple[TestClient, Path],
) -> None:
    http, dist = client
    build(dist)
    for path in (
        "/assets/missing.js",
        "/logo.png",
        "/api/nope",
        "/api",
        "/ws/nope",
        "/hooks",
        "/webhooks/nope",
        "/readyz/x",
        "/docs/x",
    ):
        answer = http.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == "http_404", path
    secret = Path("/etc/passwd").read_text()
    for sneaky in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd"):
        answer = http.get(sneaky)
        assert answer.text != secret, sneaky
        assert answer.status_code == 404 or answer.text == INDEX, sneaky
    assert INDEX not in (http.post("/w/abc/flows")).text
    docs = http.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert (http.get("/openapi.json")).json()["info"]["title"] == "Socialflow"
