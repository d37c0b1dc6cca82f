"""A Graph API emulator on loopback for tests and local development.

It answers the endpoints the client uses on both hosts (``/{version}/…``), the Instagram Login
OAuth endpoints, Facebook Login (``_facebook_login.py``: dialog, code and long-lived exchanges,
``me/permissions``, ``me/accounts`` with Page tokens, Page ``subscribed_apps``), and a control
API under ``/_emulator/`` that seeds accounts, comments and conversations, queues failures and
lists recorded calls. It enforces one private reply per comment, the 7-day private-reply and
24-hour messaging windows, an optional call limit (code 80002 with usage headers), and answers
with Meta's error shape.

Run it with ``python -m socialflow.testing.graph_api_emulator --port 8790``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from socialflow.testing._facebook_login import facebook_route
from socialflow.testing._graph_api_publishing import PublishingFault
from socialflow.testing._graph_api_state import EmulatorState, GraphFault, Reply, new_id

__all__ = ["GraphEmulator", "main"]

_VERSION = re.compile(r"^/v\d+\.\d+/")
_FAULT_CODES = {"5xx": (None, 503), "timeout": (None, 0)}


class GraphEmulator:
    """The emulator server, run in a background thread.

    Args:
        host: Address to bind; loopback only.
        port: Port, 0 for a free one.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = EmulatorState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> GraphEmulator:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()

    def calls(self, path_contains: str = "", method: str | None = None) -> list[dict[str, Any]]:
        """Accepted calls whose path contains ``path_contains``."""
        with self.state.lock:
            return [
                c
                for c in self.state.calls
                if path_contains in c["path"] and (method is None or c["method"] == method)
            ]


class _Handler(BaseHTTPRequestHandler):
    state: EmulatorState
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw and "json" in (self.headers.get("Content-Type") or ""):
            body = json.loads(raw)
        elif raw:
            body = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        try:
            # Facebook Login (dialog, exchanges, user and Page tokens) answers first
            facebook = facebook_route(
                self.state, method, url.path, params, body or {}, self._token(params)
            )
            if facebook is not None:
                reply = facebook
            elif url.path.startswith("/_emulator/"):
                reply = _control(self.state, method, url.path, body or {})
            elif url.path in (
                "/oauth/authorize",
                "/oauth/access_token",
                "/access_token",
                "/refresh_access_token",
            ):
                reply = _oauth(self.state, url.path, {**params, **(body or {})})
            else:
                reply = _graph(self.state, method, url.path, params, body, self._token(params))
        except GraphFault as fault:
            reply = fault.reply()
        except (KeyError, ValueError, TypeError) as exc:
            reply = GraphFault(100, f"(#100) Invalid parameter: {exc}").reply()
        if reply.delay:
            time.sleep(reply.delay)
        self._send(reply)

    def _token(self, params: dict[str, str]) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth.removeprefix("Bearer ").strip() or params.get("access_token")

    def _send(self, reply: Reply) -> None:
        data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if "Location" not in reply.headers:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)


def _control(state: EmulatorState, method: str, path: str, body: dict[str, Any]) -> Reply:
    route = path.removeprefix("/_emulator/")
    published = state.publishing.control(route, body)
    if published is not None:
        return Reply(200, published)
    if method == "GET" and route == "calls":
        with state.lock:
            return Reply(200, {"data": list(state.calls), "attempts": state.attempts})
    if method != "POST":
        raise GraphFault(100, f"unknown control route {method} {path}")
    if route == "reset":
        state.reset()
    elif route == "accounts":
        state.add_account(str(body["ig_user_id"]), body.get("username", "shop"), body["token"])
    elif route == "comments":
        return Reply(200, {"id": state.add_comment(body)["id"]})
    elif route == "messages":
        state.add_message(
            str(body["account"]), str(body["sender_id"]), float(body.get("age_seconds", 0))
        )
    elif route == "fail":
        state.add_fault(body)
    elif route == "shape":
        state.data_list_answers = bool(body.get("data_list", True))
    elif route == "limits":
        state.limit = (int(body["calls"]), float(body.get("window_seconds", 3600)))
    elif route == "codes":
        return Reply(
            200, {"code": state.issue_code(str(body["ig_user_id"]), body.get("username", "shop"))}
        )
    else:
        raise GraphFault(100, f"unknown control route {path}")
    return Reply(200, {"success": True})


def _fault_reply(fault: dict[str, Any], headers: dict[str, str]) -> Reply:
    kind = fault.get("kind", "error")
    if kind == "timeout":
        return Reply(
            504, {"error": {"message": "timeout"}}, headers, delay=float(fault.get("seconds", 5))
        )
    if kind == "5xx":
        return Reply(
            int(fault.get("status", 503)), {"error": {"message": "Service Unavailable"}}, headers
        )
    code = int(fault.get("code", 2))
    status = int(fault.get("status", 500 if code in (1, 2) else 400))
    extra = {k: str(v) for k, v in (fault.get("headers") or {}).items()}
    messages = {
        2: "An unexpected error has occurred. Please retry your request later.",
        4: "Application request limit reached",
        17: "User request limit reached",
        613: "Calls to this api have exceeded the rate limit.",
        190: "Error validating access token: Session has expired.",
    }
    return GraphFault(
        code,
        messages.get(code, "An unknown error occurred"),
        subcode=fault.get("subcode"),
        status=status,
    ).reply(headers | extra)


def _graph(
    state: EmulatorState,
    method: str,
    path: str,
    params: dict[str, str],
    body: Any,
    token: str | None,
) -> Reply:
    if not _VERSION.match(path):
        raise GraphFault(2500, f"Unknown path components: {path}")
    rest = _VERSION.sub("", path).strip("/")
    fault = state.take_fault(rest)
    account = None
    try:
        account = state.account_for(token)
    except GraphFault:
        if fault is None:
            raise
    headers = state.usage(account)
    slow = 0.0
    if fault is not None and fault.get("kind") == "slow":  # performed, answered late
        slow, fault = float(fault.get("seconds", 1)), None
    if fault is not None:
        return _fault_reply(fault, headers)
    assert account is not None
    try:
        state.count_call(account)
    except GraphFault as limited:
        return limited.reply(state.usage(account))
    parts = rest.split("/")
    try:
        result = _dispatch(
            state, account, method, parts, params, body if isinstance(body, dict) else {}
        )
    except PublishingFault as refused:
        raise GraphFault(refused.code, str(refused), subcode=refused.subcode) from refused
    state.record(method, rest, account.ig_user_id, params, body)
    return Reply(200, result, state.usage(account), delay=slow)


def _dispatch(
    state: EmulatorState,
    account: Any,
    method: str,
    parts: list[str],
    params: dict[str, str],
    body: dict[str, Any],
) -> dict[str, Any]:
    target = account.ig_user_id if parts[0] == "me" else parts[0]
    edge = parts[1] if len(parts) > 1 else ""
    if edge == "messages" and method == "POST":
        return _messages(state, account, body)
    if edge in ("media", "media_publish", "content_publishing_limit", "insights"):
        return _publishing(state, account, method, target, edge, {**params, **body})
    if edge == "subscribed_apps":
        if method == "POST":
            account.subscribed = params.get("subscribed_fields", "").split(",")
            return {"success": True}
        return {"data": [{"subscribed_fields": account.subscribed}]}
    if edge == "messenger_profile":
        return _messenger_profile(account, method, body)
    if edge == "replies" and method == "POST":
        comment = state.comments.get(target)
        if comment is None:
            raise GraphFault(100, f"Object with ID '{target}' does not exist", subcode=33)
        message = body.get("message") or params.get("message")
        if not message:
            raise GraphFault(100, "(#100) The parameter message is required")
        reply = state.add_comment(
            {
                "text": message,
                "media_id": comment["media"]["id"],
                "from_id": account.ig_user_id,
                "account": account.ig_user_id,
            }
        )
        return {"id": reply["id"]}
    if edge:
        raise GraphFault(100, f"Unsupported edge {edge}")
    return _node(state, account, method, target, params)


def _node(
    state: EmulatorState, account: Any, method: str, target: str, params: dict[str, str]
) -> dict[str, Any]:
    if target == account.ig_user_id and method == "GET":
        me = {"user_id": account.ig_user_id, "username": account.username, "id": new_id()}
        return {"data": [me]} if state.data_list_answers else me
    comment = state.comments.get(target)
    if comment is not None:
        if method == "DELETE":
            del state.comments[target]
            return {"success": True}
        if method == "POST" and "hide" in params:
            comment["hidden"] = params["hide"] == "true"
            return {"success": True}
        return {k: v for k, v in comment.items() if k not in ("created", "account")}
    if method == "GET" and "profile_pic" in params.get("fields", ""):
        return state.profile(account, target)
    if target in state.users and method == "GET":
        return dict(state.users[target])
    if method == "GET":
        found = state.publishing.container(account.ig_user_id, target)
        found = found or state.publishing.media_object(
            account.ig_user_id, target, params.get("fields")
        )
        if found is not None:
            return found
    if method == "GET":
        return {
            "id": target,
            "media_type": "IMAGE",
            "media_product_type": "FEED",
            "owner": {"id": account.ig_user_id},
            "timestamp": "2026-01-01T00:00:00+0000",
        }
    raise GraphFault(100, f"Object with ID '{target}' does not exist", subcode=33)


def _publishing(
    state: EmulatorState, account: Any, method: str, target: str, edge: str, args: dict[str, Any]
) -> dict[str, Any]:
    """Containers, publishing, the quota and insights (``_graph_api_publishing``)."""
    publishing = state.publishing
    own = target == account.ig_user_id
    if edge == "insights" and method == "GET":
        metrics = [m.strip() for m in str(args.get("metric") or "").split(",") if m.strip()]
        if not metrics:
            raise GraphFault(100, "(#100) The parameter metric is required")
        if own:
            return publishing.account_insights(target, metrics, args)
        return publishing.media_insights(account.ig_user_id, target, metrics)
    if not own:
        raise GraphFault(100, f"Unsupported {method} request on {target}/{edge}", subcode=33)
    if edge == "media" and method == "POST":
        return publishing.create_container(target, args)
    if edge == "media" and method == "GET":
        return publishing.media_list(target, args.get("fields"), int(args.get("limit", 25)))
    if edge == "media_publish" and method == "POST":
        return publishing.publish(target, account.username, args.get("creation_id"))
    if edge == "content_publishing_limit" and method == "GET":
        return publishing.quota(target)
    raise GraphFault(100, f"Unsupported {method} request on {edge}")


def _messages(state: EmulatorState, account: Any, body: dict[str, Any]) -> dict[str, Any]:
    recipient = body.get("recipient") or {}
    if "sender_action" in body:
        return {"recipient_id": recipient.get("id")}
    message = body.get("message") or {}
    text = message.get("text")
    if text is not None and len(text.encode()) > 1000:
        raise GraphFault(100, "Length of param message[text] must be less than or equal to 1000")
    if len(message.get("quick_replies") or []) > 13:
        raise GraphFault(100, "param message[quick_replies] must have at most 13 elements")
    attachment = message.get("attachment") or {}
    if attachment.get("type") == "template":
        _check_template(attachment.get("payload") or {})
    if "comment_id" in recipient:
        state.private_reply(account, str(recipient["comment_id"]))
        commenter = state.comments[str(recipient["comment_id"])]["from"]["id"]
        return {"recipient_id": commenter, "message_id": "aWdf" + new_id()}
    state.check_window(account, str(recipient.get("id")), body.get("tag"))
    return {"recipient_id": recipient.get("id"), "message_id": "aWdf" + new_id()}


def _messenger_profile(account: Any, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """Ice breakers and persistent menu: at most 4 ice breakers, a ``default`` locale."""
    if method == "GET":
        return {"data": [dict(account.profile)] if account.profile else []}
    if method == "DELETE":
        for name in body.get("fields") or []:
            account.profile.pop(name, None)
        return {"result": "success"}
    for name in ("ice_breakers", "persistent_menu"):
        if name not in body:
            continue
        locales = body[name]
        if not isinstance(locales, list) or not any(
            isinstance(e, dict) and e.get("locale") == "default" for e in locales
        ):
            raise GraphFault(100, f"param {name} must have an entry with locale default")
        for entry in locales:
            actions = entry.get("call_to_actions") if isinstance(entry, dict) else None
            if not isinstance(actions, list) or not actions:
                raise GraphFault(100, f"param {name}[call_to_actions] must not be empty")
            if name == "ice_breakers" and len(actions) > 4:
                raise GraphFault(100, "param ice_breakers[call_to_actions] has at most 4 elements")
        account.profile[name] = locales
    return {"result": "success"}


def _check_template(payload: dict[str, Any]) -> None:
    """Meta's limits on button and generic templates (PUBLISHING_MESSAGING.md part B)."""
    where = "param message[attachment][payload]"
    kind = payload.get("template_type")
    if kind == "button":
        text = payload.get("text") or ""
        if not text or len(text) > 640:
            raise GraphFault(100, f"{where}[text] must have 1 to 640 characters")
        _check_buttons(payload.get("buttons"), f"{where}[buttons]", least=1)
        return
    if kind != "generic":
        raise GraphFault(100, f"{where}[template_type] must be one of button, generic")
    elements = payload.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
        raise GraphFault(100, f"{where}[elements] must have 1 to 10 elements")
    for n, element in enumerate(elements):
        if not isinstance(element, dict):
            raise GraphFault(100, f"{where}[elements][{n}] must be an object")
        title, subtitle = element.get("title") or "", element.get("subtitle") or ""
        if not title or len(title) > 80:
            raise GraphFault(100, f"{where}[elements][{n}][title] must have 1 to 80 characters")
        if len(subtitle) > 80:
            raise GraphFault(
                100, f"{where}[elements][{n}][subtitle] must have at most 80 characters"
            )
        if "buttons" in element:
            _check_buttons(element["buttons"], f"{where}[elements][{n}][buttons]", least=0)


def _check_buttons(buttons: Any, where: str, *, least: int) -> None:
    if not isinstance(buttons, list) or not least <= len(buttons) <= 3:
        raise GraphFault(100, f"{where} must have {least} to 3 elements")
    for n, button in enumerate(buttons):
        kind = button.get("type") if isinstance(button, dict) else None
        if kind not in ("web_url", "postback"):
            raise GraphFault(100, f"{where}[{n}][type] must be one of web_url, postback")
        if not 0 < len(button.get("title") or "") <= 20:
            raise GraphFault(100, f"{where}[{n}][title] must have 1 to 20 characters")
        if kind == "web_url" and not str(button.get("url") or "").startswith(
            ("http://", "https://")
        ):
            raise GraphFault(100, f"{where}[{n}][url] must be an http(s) URL")
        if kind == "postback" and not 0 < len(button.get("payload") or "") <= 1000:
            raise GraphFault(100, f"{where}[{n}][payload] must have 1 to 1000 characters")


def _oauth(state: EmulatorState, path: str, params: dict[str, str]) -> Reply:
    if path == "/oauth/authorize":
        code = state.issue_code(params.get("ig_user_id", "17841400000000001"), "emulated_shop")
        query = urlencode({"code": code + "#_", "state": params.get("state", "")})
        location = f"{params['redirect_uri']}?{query}"
        return Reply(302, {}, {"Location": location})
    if path == "/oauth/access_token":
        try:
            ig_user_id, token = state.redeem_code(params.get("code", ""))
        except GraphFault as fault:
            return Reply(
                400, {"error_type": "OAuthException", "code": 400, "error_message": str(fault)}
            )
        answer = {
            "access_token": token,
            "user_id": int(ig_user_id),
            "permissions": "instagram_business_basic",
        }
        return Reply(200, {"data": [answer]} if state.data_list_answers else answer)
    if path == "/access_token":
        token = state.long_lived_token(params.get("access_token", ""))
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 5183944})
    token = state.long_lived_token(params.get("access_token", ""))
    return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 5183944})


def main(argv: list[str] | None = None) -> None:
    """Run the emulator in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="Graph API emulator on loopback")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args(argv)
    emulator = GraphEmulator(port=args.port)
    print(f"Graph API emulator on {emulator.url}", flush=True)  # noqa: T201 - CLI output
    try:
        emulator.server.serve_forever()
    except KeyboardInterrupt:
        emulator.server.server_close()


if __name__ == "__main__":
    main()
