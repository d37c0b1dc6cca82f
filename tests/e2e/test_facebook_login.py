"""Facebook Login in headless Chromium against the real stack and the Graph API emulator: an
admin clicks "Connect with Facebook", passes the (emulated) Facebook dialog, and lands back on
the web app's page that says which account was connected; the account is listed with its Page.
A cancelled dialog lands on the same page with the reason in words."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, Shots, Stack

pytestmark = pytest.mark.e2e


def _new_workspace(page: Any) -> str:
    page.goto("/register")
    page.get_by_label("Email").fill(f"bakery-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create your account").click()
    page.get_by_label("Workspace name").fill("Bakery")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]+/flows$"))
    return str(page.url.split("/w/")[1].split("/")[0])


def test_connect_with_facebook_lands_on_a_page_that_names_the_account(
    stack: Stack, context: Any, shots: Shots
) -> None:
    assert stack.emulator is not None
    facebook = stack.emulator.state.facebook
    suffix = uuid.uuid4().hex[:6]
    ig_user_id = f"1784{uuid.uuid4().int % 10**13:013d}"
    page_id = f"11{uuid.uuid4().int % 10**13:013d}"
    user_id = f"10{uuid.uuid4().int % 10**13:013d}"
    facebook.add_user(
        {
            "user_id": user_id,
            "name": "Page Admin",
            "pages": [
                {
                    "page_id": page_id,
                    "name": "Corner Bakery",
                    "ig_user_id": ig_user_id,
                    "username": f"corner_bakery_{suffix}",
                }
            ],
        }
    )
    facebook.login_as, facebook.deny = user_id, False

    page = context.new_page()
    workspace_id = _new_workspace(page)
    page.goto(f"/w/{workspace_id}/instagram")
    expect(page.get_by_text("No Instagram account connected yet.")).to_be_visible()
    shots(page, "instagram-before-connecting")
    page.get_by_role("button", name="Connect with Facebook").click()

    expect(page).to_have_url(re.compile(rf"/w/{workspace_id}/instagram/connected\?attempt="))
    result = page.get_by_role("status", name="Connection result")
    expect(result).to_contain_text(f"Connected @corner_bakery_{suffix}", timeout=30_000)
    expect(result).to_contain_text("Facebook Login connected the account")
    shots(page, "connected-with-facebook")
    # the dialog was asked for PKCE, and the page is the web app's, not a JSON body
    dialog = facebook.dialogs[-1]
    assert dialog["code_challenge_method"] == "S256" and dialog["state"]
    expect(page.locator("body")).not_to_contain_text('"status"')

    page.get_by_role("link", name="Back to Instagram accounts").click()
    accounts = page.get_by_role("table", name="Instagram accounts")
    expect(accounts).to_contain_text(ig_user_id)
    expect(accounts).to_contain_text("Facebook Login")
    expect(accounts).to_contain_text("Page Corner Bakery")
    expect(accounts).to_contain_text("Page token; it does not expire")
    expect(accounts).to_contain_text("sandbox")
    shots(page, "account-listed-with-its-page")

    # cancelling on Facebook's dialog lands on the same page, with the reason in words
    facebook.deny = True
    try:
        page.get_by_role("button", name="Connect with Facebook").click()
        expect(page).to_have_url(re.compile(r"/instagram/connected\?attempt="))
        refused = page.get_by_role("alert", name="Connection result")
        expect(refused).to_contain_text("Connection cancelled")
        expect(refused).to_contain_text("cancelled the Facebook login")
        shots(page, "cancelled-on-facebook")
    finally:
        facebook.deny = False

    # a link Socialflow did not make says so, without echoing anything from the URL
    page.goto("/instagram/connected?error=%3Cb%3Ehacked%3C%2Fb%3E")
    alert = page.get_by_role("alert", name="Connection result")
    expect(alert).to_contain_text("altered or is not one Socialflow made")
    expect(alert).not_to_contain_text("hacked")
