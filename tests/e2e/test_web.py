"""The web app end to end in headless Chromium against the real stack: an editor builds,
publishes and runs a flow and watches the run complete live; a viewer finds no way to edit."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, Shots, Sink, Stack, sign_up

pytestmark = pytest.mark.e2e


def test_sign_up_build_publish_and_watch_a_run_live(
    stack: Stack, context: Any, shots: Shots, sink: Sink
) -> None:
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin$"))
    shots(page, "sign-in")
    page.get_by_role("link", name="Create an account").click()
    email = f"editor-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create your account").click()

    expect(page.get_by_role("heading", name="Welcome to Socialflow")).to_be_visible()
    page.get_by_label("Workspace name").fill("Acme social")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]+/flows$"))
    workspace_id = page.url.split("/w/")[1].split("/")[0]
    expect(page.get_by_text("No flows yet")).to_be_visible()
    shots(page, "flows-empty")

    page.get_by_role("button", name="New flow").click()
    # a template is offered disabled exactly when it says which node kinds it still needs
    cards = page.locator("label.template")
    # the six starters and the comment → DM growth template
    expect(cards).to_have_count(7)
    expect(page.locator("label.template", has_text="Comment → DM growth")).to_have_count(1)
    for n in range(7):
        card = cards.nth(n)
        needs = card.locator(".needs").count() > 0
        assert card.get_by_role("radio").is_disabled() == needs, card.inner_text()
    page.locator("label.template", has_text="Daily summary to a webhook").click()
    shots(page, "new-flow-templates")
    page.get_by_role("button", name="Create flow").click()
    expect(page).to_have_url(re.compile(r"/flows/[0-9a-f-]+$"))
    post = page.get_by_test_id("node-post")
    expect(post).to_be_visible()
    expect(page.get_by_test_id("node-daily")).to_be_visible()
    shots(page, "builder-from-template")

    # change a field in the node's form: the webhook URL, to a loopback server of this test
    post.click()
    url_field = page.locator("#root_url")
    expect(url_field).to_have_value("https://example.com/webhook")
    url_field.fill(f"{sink.url}/daily")
    expect(page.get_by_role("status").filter(has_text="All changes saved")).to_be_visible()
    shots(page, "form-changed-and-saved")

    # keyboard editing: add a node from the palette, delete it, undo, delete again; with no node
    # selected (a click on the empty canvas) the new node is left unconnected
    page.locator(".react-flow__pane").click(position={"x": 10, "y": 10})
    expect(page.get_by_text("Select a node to see its settings.")).to_be_visible()
    page.get_by_role("button", name="Condition").click()
    condition = page.get_by_test_id("node-condition")
    expect(condition).to_be_visible()
    expect(condition).to_contain_text("cannot be reached")  # the API's problem, on the node
    page.keyboard.press("Delete")
    expect(condition).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(condition).to_be_visible()
    page.keyboard.press("Delete")
    expect(condition).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="All changes saved")).to_be_visible()

    # a sandbox test of the draft lights the nodes up live
    page.get_by_role("tab", name="Test").click()
    page.get_by_role("button", name="Run test (sandbox)").click()
    expect(post).to_have_class(re.compile(r"\brun-completed\b"), timeout=90_000)
    expect(page.locator(".test-result")).to_contain_text("completed")
    shots(page, "sandbox-test-lit")
    assert sink.received == [], "a sandbox test run must not send the HTTP request"
    before_run = len(sink.received)

    page.get_by_role("button", name="Publish…").click()
    page.get_by_label("Version note").fill("first version")
    page.get_by_role("button", name="Publish new version").click()
    expect(page.get_by_text("v1 live")).to_be_visible()
    shots(page, "published")

    runs = context.new_page()
    runs.goto(f"/w/{workspace_id}/runs")
    expect(runs.get_by_role("status").filter(has_text="Live")).to_be_visible()
    expect(runs.locator("tr[data-sandbox='true']")).to_have_count(1)  # the test run above
    expect(runs.locator("tr[data-sandbox='false']")).to_have_count(0)

    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+$"))
    # the runs page, never reloaded, shows the run completed from the live stream
    row = runs.locator("tr[data-status='completed'][data-sandbox='false']")
    expect(row).to_be_visible(timeout=90_000)
    expect(row).to_contain_text("Daily summary to a webhook")
    shots(runs, "runs-live-completed")
    expect(page.locator("h1 .badge")).to_have_text("completed", timeout=30_000)
    expect(page.locator("details.node-run")).to_have_count(3)
    shots(page, "run-detail")

    assert len(sink.received) == before_run + 1, stack.logs()
    assert sink.received[-1]["path"] == "/daily"
    assert "daily Socialflow summary" in sink.received[-1]["body"]


def test_a_viewer_finds_no_way_to_edit(stack: Stack, context: Any, shots: Shots) -> None:
    admin = sign_up(stack)
    viewer = sign_up(stack)
    graph = {
        "nodes": [
            {"id": "start", "kind": "trigger.manual", "position": {"x": 60, "y": 100}},
            {
                "id": "greet",
                "kind": "data.set",
                "label": "Greeting",
                "config": {"values": {"text": "Hi {{ trigger.name }}"}},
                "position": {"x": 340, "y": 100},
            },
        ],
        "edges": [{"source": "start", "source_port": "event", "target": "greet"}],
    }
    with stack.client() as http:
        ws = http.post("/api/workspaces", json={"name": "Shared"}, headers=admin.headers)
        assert ws.status_code == 201, ws.text
        workspace_id = ws.json()["id"]
        base = f"/api/workspaces/{workspace_id}"
        flow = http.post(
            f"{base}/flows", json={"name": "Greeter", "graph": graph}, headers=admin.headers
        )
        assert flow.status_code == 201, flow.text
        flow_id = flow.json()["id"]
        published = http.post(
            f"{base}/flows/{flow_id}/publish", json={"note": "v1"}, headers=admin.headers
        )
        assert published.status_code == 201, published.text
        member = http.post(
            f"{base}/members", json={"email": viewer.email, "role": "viewer"}, headers=admin.headers
        )
        assert member.status_code == 201, member.text

    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(viewer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/flows$"))
    expect(page.get_by_role("link", name="Greeter")).to_be_visible()
    expect(page.locator(".topbar .role")).to_have_text("viewer")
    expect(page.get_by_role("button", name="New flow")).to_have_count(0)
    expect(page.get_by_role("link", name="Members")).to_have_count(0)
    shots(page, "viewer-flows")

    page.get_by_role("link", name="Greeter").click()
    node = page.get_by_test_id("node-greet")
    expect(node).to_be_visible()
    expect(page.get_by_text("Read only")).to_be_visible()
    for name in ("Publish…", "Undo", "Redo", "Auto-layout", "Run now", "Pause"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_label("Node palette")).to_have_count(0)
    node.click()
    expect(page.get_by_label("Label")).to_be_disabled()
    expect(page.get_by_role("button", name="Delete node")).to_have_count(0)
    page.keyboard.press("Delete")
    expect(node).to_be_visible()
    page.get_by_role("tab", name="Test").click()
    expect(page.get_by_role("button", name="Run test (sandbox)")).to_have_count(0)
    page.get_by_role("tab", name="Versions").click()
    expect(page.get_by_role("button", name="View", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Roll back"))).to_have_count(0)
    shots(page, "viewer-builder-read-only")

    page.get_by_role("link", name="Credentials").click()
    expect(page.get_by_role("heading", name="Credentials")).to_be_visible()
    expect(page.get_by_role("form", name="New credential")).to_have_count(0)
    shots(page, "viewer-credentials")

    # and the API refuses the viewer's session anyway (with a valid CSRF token)
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "sf_csrf")
    headers = {"X-CSRF-Token": csrf}
    base = f"/api/workspaces/{workspace_id}/flows/{flow_id}"
    refused = {
        "save": page.request.patch(base, data={"name": "Hijacked"}, headers=headers),
        "publish": page.request.post(f"{base}/publish", data={"note": "x"}, headers=headers),
        "run": page.request.post(f"{base}/run", data={"payload": {}}, headers=headers),
        "delete": page.request.delete(base, headers=headers),
    }
    assert {name: r.status for name, r in refused.items()} == dict.fromkeys(refused, 403)
    assert all(r.json()["message"] for r in refused.values())
    with stack.client() as http:
        still = http.get(base, headers=admin.headers)
    assert still.json()["name"] == "Greeter"
