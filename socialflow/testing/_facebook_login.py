"""Facebook Login in the Graph API emulator: the dialog, the code and long-lived exchanges,
``me``, ``me/permissions`` and ``me/accounts`` for user tokens, Page subscriptions, and the
control routes under ``/_emulator/facebook/``.

Page tokens are also tokens of the Instagram account linked to the Page, so every Instagram
call the emulator answers works with them on either host.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from socialflow.testing._facebook_state import FacebookState
from socialflow.testing._graph_api_state import EmulatorState, GraphFault, Reply

__all__ = ["facebook_route"]

_VERSION = re.compile(r"^/v\d+\.\d+/")


def facebook_route(
    state: EmulatorState,
    method: str,
    path: str,
    params: dict[str, str],
    body: dict[str, Any],
    token: str | None,
) -> Reply | None:
    """The answer when ``path`` is Facebook Login's, else None (the Instagram routes answer)."""
    fb: FacebookState = state.facebook
    if path.startswith("/_emulator/facebook/"):
        return _control(state, path.removeprefix("/_emulator/facebook/"), body)
    if not _VERSION.match(path):
        return None
    rest = _VERSION.sub("", path).strip("/")
    if rest in ("dialog/oauth", "oauth/access_token"):
        state.record(method, rest, "oauth", params, body)
        return _dialog(fb, params) if rest == "dialog/oauth" else _access_token(fb, params)
    user = fb.user_for(token)
    if user is not None:
        state.record(method, rest, f"user:{user.user_id}", params, body)
        return Reply(200, _user_call(state, fb, user.user_id, rest))
    page = fb.page_for(token)
    parts = rest.split("/")
    if page is not None and parts[0] in ("me", page.page_id):
        if rest.endswith("subscribed_apps"):
            state.record(method, rest, f"page:{page.page_id}", params, body)
            if method == "POST":
                fields = params.get("subscribed_fields") or ""
                if not fields:
                    raise GraphFault(100, "(#100) The parameter subscribed_fields is required")
                fb.subscriptions[page.page_id] = fields.split(",")
                return Reply(200, {"success": True})
            return Reply(200, {"data": [{"subscribed_fields": fb.subscriptions.get(page.page_id)}]})
        if len(parts) == 1 and method == "GET":
            return Reply(200, {"id": page.page_id, "name": page.name})
    return None


def _dialog(fb: FacebookState, params: dict[str, str]) -> Reply:
    fb.dialogs.append(dict(params))
    redirect_uri, state = params.get("redirect_uri"), params.get("state", "")
    if not params.get("client_id") or not redirect_uri:
        raise GraphFault(100, "Invalid App ID or redirect_uri")
    if fb.deny:
        query = {
            "error": "access_denied",
            "error_code": "200",
            "error_description": "Permissions error",
            "error_reason": "user_denied",
            "state": state,
        }
        return Reply(302, {}, {"Location": f"{redirect_uri}?{urlencode(query)}"})
    user = fb.dialog_user(params.get("fb_user_id"))
    if user is None:
        raise GraphFault(100, "the emulator has no Facebook user to log in")
    code = fb.issue_code(
        user.user_id,
        redirect_uri,
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    )
    query = {"code": code, "state": state}
    return Reply(302, {}, {"Location": f"{redirect_uri}?{urlencode(query)}#_=_"})


def _access_token(fb: FacebookState, params: dict[str, str]) -> Reply:
    if not params.get("client_id") or not params.get("client_secret"):
        raise GraphFault(101, "Error validating application. Invalid application ID.")
    try:
        if params.get("grant_type") == "fb_exchange_token":
            token = fb.long_lived(params.get("fb_exchange_token", ""))
            answer = {"access_token": token, "token_type": "bearer", "expires_in": 5183944}
            return Reply(200, answer)
        token = fb.redeem_code(
            params.get("code", ""), params.get("redirect_uri", ""), params.get("code_verifier")
        )
    except ValueError as exc:
        raise GraphFault(100, str(exc), subcode=36009) from exc
    return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 5400})


def _user_call(state: EmulatorState, fb: FacebookState, user_id: str, rest: str) -> dict[str, Any]:
    user = fb.users[user_id]
    if rest == "me":
        return {"id": user.user_id, "name": user.name}
    if rest == "me/permissions":
        return {"data": [{"permission": p, "status": "granted"} for p in user.granted]}
    if rest == "me/accounts":
        if "pages_show_list" not in user.granted:
            raise GraphFault(10, "(#10) This endpoint requires the 'pages_show_list' permission")
        data = []
        for page_id in user.pages:
            page = fb.pages[page_id]
            token = fb.page_token(page_id)
            item: dict[str, Any] = {
                "id": page.page_id,
                "name": page.name,
                "access_token": token,
                "tasks": page.tasks,
                "category": "Shopping & retail",
            }
            if page.ig_user_id:
                # the Page token acts as the linked Instagram account on every Instagram call
                state.add_account(page.ig_user_id, page.username, token)
                item["instagram_business_account"] = {
                    "id": page.ig_user_id,
                    "username": page.username,
                }
            data.append(item)
        return {"data": data, "paging": {"cursors": {"before": "QVFIU", "after": "QVFIU"}}}
    raise GraphFault(100, f"Unsupported get request for a user token: {rest}", subcode=33)


def _control(state: EmulatorState, route: str, body: dict[str, Any]) -> Reply:
    fb: FacebookState = state.facebook
    if route == "users":
        fb.add_user(body)
    elif route == "login":
        fb.login_as = str(body["user_id"]) if body.get("user_id") else None
        fb.deny = bool(body.get("deny", False))
    elif route == "revoke":
        for token in fb.revoke_page(str(body["page_id"])):
            with state.lock:
                for account in state.accounts.values():
                    account.tokens.discard(token)
    else:
        raise GraphFault(100, f"unknown control route /_emulator/facebook/{route}")
    return Reply(200, {"success": True})
