"""The Graph API emulator itself: its control API over HTTP, Meta's rules, its command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx

from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import ACCOUNT, TOKEN, graph_emulator  # noqa: F401

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_control_api_rules_and_recorded_calls(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    with httpx.Client(base_url=graph_emulator.url, trust_env=False) as http:
        comment = http.post("/_emulator/comments", json={"account": ACCOUNT, "from_id": "42"})
        comment_id = comment.json()["id"]
        old = http.post("/_emulator/comments", json={"age_seconds": 8 * 86400}).json()["id"]
        http.post("/_emulator/messages", json={"account": ACCOUNT, "sender_id": "42"})
        http.post(
            "/_emulator/messages",
            json={"account": ACCOUNT, "sender_id": "43", "age_seconds": 3 * 86400},
        )

        def send(body: dict[str, object]) -> httpx.Response:
            return http.post(f"/v25.0/{ACCOUNT}/messages", json=body, headers=AUTH)

        first = send({"recipient": {"comment_id": comment_id}, "message": {"text": "a"}})
        assert first.status_code == 200 and first.json()["recipient_id"] == "42"
        second = send({"recipient": {"comment_id": comment_id}, "message": {"text": "b"}})
        error = second.json()["error"]
        assert (error["code"], error["error_subcode"], error["type"]) == (
            100,
            2534025,
            "OAuthException",
        )
        assert "fbtrace_id" in error
        late = send({"recipient": {"comment_id": old}, "message": {"text": "c"}})
        assert late.json()["error"]["error_subcode"] == 2534025
        assert send({"recipient": {"id": "42"}, "message": {"text": "hi"}}).status_code == 200
        outside = send({"recipient": {"id": "43"}, "message": {"text": "hi"}}).json()["error"]
        assert (outside["code"], outside["error_subcode"]) == (10, 2534022)
        tagged = send({"recipient": {"id": "43"}, "message": {"text": "hi"}, "tag": "HUMAN_AGENT"})
        assert tagged.status_code == 200
        too_long = send({"recipient": {"id": "42"}, "message": {"text": "x" * 1001}})
        assert too_long.json()["error"]["code"] == 100
        unknown = http.get("/v25.0/me", headers={"Authorization": "Bearer nope"})
        assert unknown.status_code == 400 and unknown.json()["error"]["code"] == 190
        calls = http.get("/_emulator/calls").json()
        assert [c["body"]["recipient"] for c in calls["data"]] == [
            {"comment_id": comment_id},
            {"id": "42"},
            {"id": "43"},
        ]
        assert calls["attempts"] == 8


def test_rate_limit_and_usage_headers(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    with httpx.Client(base_url=graph_emulator.url, trust_env=False, headers=AUTH) as http:
        http.post("/_emulator/limits", json={"calls": 2, "window_seconds": 600})
        first = http.get("/v25.0/me")
        usage = json.loads(first.headers["x-business-use-case-usage"])[ACCOUNT][0]
        assert usage["type"] == "instagram" and usage["call_count"] == 50
        assert json.loads(first.headers["x-app-usage"])["call_count"] == 50
        assert http.get("/v25.0/me").status_code == 200
        limited = http.get("/v25.0/me")
        assert limited.json()["error"]["code"] == 80002
        usage = json.loads(limited.headers["x-business-use-case-usage"])[ACCOUNT][0]
        assert usage["call_count"] == 100 and usage["estimated_time_to_regain_access"] == 10


def test_failures_on_request(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    with httpx.Client(base_url=graph_emulator.url, trust_env=False, headers=AUTH) as http:
        http.post("/_emulator/fail", json={"kind": "5xx", "status": 503})
        http.post("/_emulator/fail", json={"code": 613, "count": 2})
        http.post("/_emulator/fail", json={"code": 190, "subcode": 460})
        http.post("/_emulator/fail", json={"kind": "timeout", "seconds": 0.5})
        assert http.get("/v25.0/me").status_code == 503
        assert http.get("/v25.0/me").json()["error"]["code"] == 613
        assert http.get("/v25.0/me").json()["error"]["code"] == 613
        assert http.get("/v25.0/me").json()["error"]["error_subcode"] == 460
        try:
            http.get("/v25.0/me", timeout=0.2)
            timed_out = False
        except httpx.TimeoutException:
            timed_out = True
        assert timed_out
        assert http.get("/v25.0/me").status_code == 200
        assert http.get("/_emulator/calls").json()["data"][0]["path"] == "me"


def test_oauth_endpoints(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    with httpx.Client(base_url=graph_emulator.url, trust_env=False) as http:
        code = http.post("/_emulator/codes", json={"ig_user_id": "178", "username": "x"}).json()
        short = http.post("/oauth/access_token", data={"code": code["code"] + "#_"}).json()
        assert short["user_id"] == 178 and short["access_token"]
        used = http.post("/oauth/access_token", data={"code": code["code"]})
        assert used.status_code == 400 and "already used" in used.json()["error_message"]
        long = http.get("/access_token", params={"access_token": short["access_token"]}).json()
        assert long["token_type"] == "bearer" and long["expires_in"] > 5_000_000
        fresh = http.get("/refresh_access_token", params={"access_token": long["access_token"]})
        token = fresh.json()["access_token"]
        me = http.get("/v25.0/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["user_id"] == "178"


def test_runs_from_the_command_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "socialflow.testing.graph_api_emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        assert f"127.0.0.1:{port}" in process.stdout.readline().decode()
        url = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                answer = httpx.post(
                    f"{url}/_emulator/accounts", json={"ig_user_id": "1", "token": "t"}
                )
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert answer.status_code == 200
        me = httpx.get(f"{url}/v25.0/me", headers={"Authorization": "Bearer t"})
        assert me.json()["user_id"] == "1"
    finally:
        process.terminate()
        process.wait(10)
