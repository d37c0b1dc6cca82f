"""CSRF: a write the session cookie authenticates needs the X-CSRF-Token header, whatever else
the request carries (malformed cookies beside the session, an Authorization header that does
not sign anybody in); a write a bearer token authenticates needs none."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import PASSWORD, Actor, sign_up


async def _browser_session(client: httpx.AsyncClient, actor: Actor) -> tuple[str, str]:
    """Sign in as the browser does; returns the session and CSRF cookie values."""
    login = await client.post(
        "/api/auth/login", data={"username": actor.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    session, csrf = client.cookies["sf_session"], client.cookies["sf_csrf"]
    # from here on every request says exactly which cookies it sends
    client.cookies.clear()
    return session, csrf


async def _workspace_names(client: httpx.AsyncClient, actor: Actor) -> list[str]:
    listed = await client.get("/api/workspaces", headers=actor.headers)
    assert listed.status_code == 200, listed.text
    return [w["name"] for w in listed.json()]


@pytest.mark.parametrize(
    "cookie",
    [
        # a value with a space: Python's SimpleCookie gives up on the whole header
        "x=a b; sf_session={session}; sf_csrf={csrf}",
        'sf_session={session}; sf_csrf={csrf}; tracker="unterminated',
        "a=1;;; sf_session={session} ; b=[x]; sf_csrf={csrf}",
        "sf_session={session}; x=\\x00; sf_csrf={csrf}",
        # no sf_csrf cookie at all
        "x=a b; sf_session={session}",
    ],
)
async def test_a_malformed_cookie_beside_the_session_does_not_skip_the_check(
    client: httpx.AsyncClient, cookie: str
) -> None:
    victim = await sign_up(client)
    session, csrf = await _browser_session(client, victim)
    header = cookie.format(session=session, csrf=csrf)
    name = f"forged-{len(cookie)}"
    forged = await client.post("/api/workspaces", json={"name": name}, headers={"Cookie": header})
    assert forged.status_code == 403, forged.text
    assert forged.json()["code"] == "csrf_failed"
    assert name not in await _workspace_names(client, victim)
    # the same header does authenticate the victim: the cookie was read, the header is missing
    me = await client.get("/api/users/me", headers={"Cookie": header})
    assert me.status_code == 200 and me.json()["email"] == victim.email


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "Negotiate abc", "anything"],
)
async def test_an_authorization_header_that_signs_nobody_in_does_not_skip_the_check(
    client: httpx.AsyncClient, authorization: str
) -> None:
    victim = await sign_up(client)
    session, csrf = await _browser_session(client, victim)
    cookie = f"sf_session={session}; sf_csrf={csrf}"
    name = f"forged-{authorization[:6]}"
    forged = await client.post(
        "/api/workspaces",
        json={"name": name},
        headers={"Cookie": cookie, "Authorization": authorization},
    )
    assert forged.status_code == 403, forged.text
    assert forged.json()["code"] == "csrf_failed"
    assert name not in await _workspace_names(client, victim)
    for method, path in (("PATCH", "/api/users/me"), ("POST", "/api/auth/logout")):
        answer = await client.request(
            method,
            path,
            json={"display_name": "pwned"},
            headers={"Cookie": cookie, "Authorization": authorization},
        )
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["code"] == "csrf_failed"
    me = await client.get("/api/users/me", headers={"Cookie": cookie})
    assert me.status_code == 200, "the session must still be alive: logout was refused too"
    assert me.json()["display_name"] == ""


async def test_the_credential_that_signed_in_decides(client: httpx.AsyncClient) -> None:
    """A valid bearer token beside someone's cookie: the bearer user acts, no CSRF header is
    needed (a foreign site cannot set Authorization), and the cookie's user is untouched."""
    cookie_user, script_user = await sign_up(client), await sign_up(client)
    session, csrf = await _browser_session(client, cookie_user)
    created = await client.post(
        "/api/workspaces",
        json={"name": "by-bearer"},
        headers={"Cookie": f"sf_session={session}", **script_user.headers},
    )
    assert created.status_code == 201, created.text
    assert "by-bearer" in await _workspace_names(client, script_user)
    assert "by-bearer" not in await _workspace_names(client, cookie_user)
    # and the cookie with its CSRF header is the browser's normal, working write
    ok = await client.post(
        "/api/workspaces",
        json={"name": "by-cookie"},
        headers={"Cookie": f"sf_session={session}; sf_csrf={csrf}", "X-CSRF-Token": csrf},
    )
    assert ok.status_code == 201, ok.text
    assert "by-cookie" in await _workspace_names(client, cookie_user)


@pytest.mark.parametrize("sent", [b"\xe9t\xe9", b"", b"x" * 5000])
async def test_odd_csrf_headers_are_refused_not_crashed_on(
    client: httpx.AsyncClient, sent: bytes
) -> None:
    victim = await sign_up(client)
    session, csrf = await _browser_session(client, victim)
    answer = await client.post(
        "/api/workspaces",
        json={"name": "odd"},
        headers=[
            (b"Cookie", f"sf_session={session}; sf_csrf={csrf}".encode()),
            (b"X-CSRF-Token", sent),
        ],
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "csrf_failed"
