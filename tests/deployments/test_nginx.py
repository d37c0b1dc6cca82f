"""The NGINX config in deployments/nginx/, run on loopback in front of a recording upstream."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from socialflow.api.middleware import CONTENT_SECURITY_POLICY
from socialflow.core.settings import Settings
from tests.deployments._nginx import Rendered, Upstream, htpasswd, nginx_argv, render

OPERATOR = ("operator", "s3cret-operator-pass")
HSTS = "max-age=63072000; includeSubDomains"


@dataclass
class Proxy:
    rendered: Rendered
    api: Upstream
    prefect: Upstream
    client: httpx.Client

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.rendered.https_port}"

    def tls_socket(self) -> ssl.SSLSocket:
        context = ssl.create_default_context(cafile=str(self.rendered.cert))
        raw = socket.create_connection(("127.0.0.1", self.rendered.https_port), timeout=10)
        return context.wrap_socket(raw, server_hostname="127.0.0.1")

    def announce(self, path: str, length: int) -> int:
        """Status NGINX answers to a POST announcing ``length`` body bytes, before any is sent."""
        with self.tls_socket() as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {length}\r\n\r\n".encode()
            )
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
        return int(status_line.split()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(200):
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nginx does not listen on {port}: {log.read_text()}")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is missing: apt-get install -y nginx (.ci/run installs it)")
    api, prefect = Upstream("api"), Upstream("prefect")
    api_port, prefect_port = api.start(), prefect.start()
    prefix = tmp_path_factory.mktemp("nginx")
    passwords = prefix / "htpasswd"
    htpasswd(passwords, *OPERATOR)
    rendered = render(prefix, api_port=api_port, prefect_port=prefect_port, htpasswd_file=passwords)
    checked = subprocess.run(nginx_argv(rendered, "-t"), capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(nginx_argv(rendered, "-g", "daemon off;"))
    try:
        _wait_for_port(rendered.https_port, process, rendered.error_log)
        context = ssl.create_default_context(cafile=str(rendered.cert))
        with httpx.Client(verify=context, timeout=30, trust_env=False) as client:
            yield Proxy(rendered, api, prefect, client)
    finally:
        os.kill(process.pid, signal.SIGQUIT)  # graceful stop of the master we started
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        api.stop()
        prefect.stop()


def test_config_passes_nginx_t(proxy: Proxy) -> None:
    result = subprocess.run(nginx_argv(proxy.rendered, "-t"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_http_redirects_to_https(proxy: Proxy) -> None:
    answer = httpx.get(f"http://127.0.0.1:{proxy.rendered.http_port}/api/me?x=1", trust_env=False)
    assert answer.status_code == 301
    assert answer.headers["location"] == "https://127.0.0.1/api/me?x=1"


def test_https_adds_hsts_and_the_apps_csp_once(proxy: Proxy) -> None:
    answer = proxy.client.get(f"{proxy.base}/api/plain")
    assert answer.status_code == 200 and answer.json() == {"upstream": "api"}
    assert answer.headers.get_list("strict-transport-security") == [HSTS]
    assert answer.headers.get_list("content-security-policy") == [CONTENT_SECURITY_POLICY]
    # the API sets both itself: NGINX must not send a second copy
    proxy.api.answer_headers["/api/own"] = {
        "Content-Security-Policy": "default-src 'none'",
        "Strict-Transport-Security": "max-age=1",
    }
    own = proxy.client.get(f"{proxy.base}/api/own")
    assert own.headers.get_list("content-security-policy") == ["default-src 'none'"]
    assert own.headers.get_list("strict-transport-security") == ["max-age=1"]


def test_forwarded_headers_reach_the_api(proxy: Proxy) -> None:
    proxy.client.get(f"{proxy.base}/api/forwarded", headers={"X-Request-ID": "abc"})
    seen = next(s for s in reversed(proxy.api.seen) if s.path == "/api/forwarded")
    assert seen.headers["x-forwarded-proto"] == "https"
    assert seen.headers["x-forwarded-for"] == "127.0.0.1"
    assert seen.headers["x-real-ip"] == "127.0.0.1"
    assert seen.headers["host"] == "127.0.0.1"
    assert seen.headers["x-forwarded-port"] == str(proxy.rendered.https_port)
    assert seen.headers["x-request-id"] == "abc"


def test_body_limits_match_the_apps(proxy: Proxy) -> None:
    defaults = Settings()
    limit = defaults.api.max_body_bytes
    at_limit = proxy.client.post(f"{proxy.base}/api/things", content=b"x" * limit)
    assert at_limit.status_code == 200
    assert proxy.announce("/api/things", limit + 1) == 413

    upload = "/api/workspaces/w1/knowledge-bases/k1/documents"
    upload_limit = defaults.knowledge.max_upload_bytes + 64_000
    at_upload_limit = proxy.client.post(f"{proxy.base}{upload}", content=b"u" * upload_limit)
    assert at_upload_limit.status_code == 200
    assert proxy.api.seen[-1].path == upload and len(proxy.api.seen[-1].body) == upload_limit
    assert proxy.announce(upload, upload_limit + 1) == 413

    webhook_limit = defaults.instagram.max_webhook_bytes
    meta = proxy.client.post(f"{proxy.base}/webhooks/instagram", content=b"w" * webhook_limit)
    assert meta.status_code == 200
    assert proxy.announce("/webhooks/instagram", webhook_limit + 1) == 413


def test_webhook_bodies_and_paths_arrive_unchanged(proxy: Proxy) -> None:
    body = bytes(range(256)) + b'\r\n{"entry": [ {"a": "\\u00e9"} ]}\r\n\x1f\x8b\x08\x00' * 3
    signature = "sha256=" + "ab" * 32
    for path in ("/webhooks/instagram?hub.mode=x&a=%2F%20", "/hooks/f-123?x=%2F..%2F&y=1"):
        answer = proxy.client.post(
            f"{proxy.base}{path}",
            content=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        )
        assert answer.status_code == 200
        seen = proxy.api.seen[-1]
        assert seen.path == path
        assert seen.body == body
        assert seen.headers["x-hub-signature-256"] == signature
        assert seen.headers["content-type"] == "application/json"
        assert "content-encoding" not in seen.headers


def test_websocket_upgrade_reaches_the_api(proxy: Proxy) -> None:
    path = "/ws/workspaces/w1/executions"
    key = base64.b64encode(os.urandom(16)).decode()
    with proxy.tls_socket() as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        sock.sendall(b"\x81\x05hello")  # bytes flow both ways through the tunnel
        echoed = b""
        while len(echoed) < 7:
            echoed += sock.recv(4096)
        assert echoed == b"\x81\x05hello"
    seen = next(s for s in reversed(proxy.api.seen) if s.path == path)
    assert seen.headers["upgrade"].lower() == "websocket"
    assert seen.headers["connection"].lower() == "upgrade"


def test_login_is_rate_limited(proxy: Proxy) -> None:
    statuses: list[int] = []
    while len(statuses) < 300 and 429 not in statuses:
        statuses.append(proxy.client.post(f"{proxy.base}/api/auth/login", json={}).status_code)
    assert 429 in statuses
    assert statuses.index(429) > 20  # the burst of 20 passes first


def test_webhooks_absorb_a_burst(proxy: Proxy) -> None:
    statuses = {
        proxy.client.post(f"{proxy.base}/webhooks/instagram", content=b"{}").status_code
        for _ in range(300)
    }
    assert statuses == {200}


def test_prefect_is_operator_only(proxy: Proxy) -> None:
    before = len(proxy.prefect.seen)
    assert proxy.client.get(f"{proxy.base}/prefect/").status_code == 401
    assert proxy.client.get(f"{proxy.base}/prefect/api/health").status_code == 401
    assert proxy.client.get(f"{proxy.base}/prefect/", auth=("operator", "wrong")).status_code == 401
    assert len(proxy.prefect.seen) == before

    ui = proxy.client.get(f"{proxy.base}/prefect/runs", auth=OPERATOR)
    assert ui.status_code == 200 and ui.json() == {"upstream": "prefect"}
    api = proxy.client.get(f"{proxy.base}/prefect/api/health", auth=OPERATOR)
    assert api.status_code == 200
    assert proxy.prefect.paths()[-2:] == ["/prefect/runs", "/api/health"]
    # the same Authorization header carries Prefect's auth string to the server
    expected = "Basic " + base64.b64encode(":".join(OPERATOR).encode()).decode()
    assert proxy.prefect.seen[-1].headers["authorization"] == expected


def test_metrics_are_not_public(proxy: Proxy) -> None:
    assert proxy.client.get(f"{proxy.base}/metrics").status_code == 404
    assert "/metrics" not in proxy.api.paths()
