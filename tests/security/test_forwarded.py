"""Per-address login limits cannot be dodged with X-Forwarded-For.

The real API runs under uvicorn with the command line of deployments/compose/compose.yaml, behind
the project's NGINX config on loopback. The attacker connects from an address of its own
(127.x.y.z) and sends a different forged X-Forwarded-For (and X-Real-IP, Forwarded) with every
guess: through NGINX, and straight to the API.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from sqlalchemy import func, select

from socialflow.api.auth.models import LoginAttempt
from socialflow.stack import ManagedProcess
from tests.deployments._nginx import Rendered, htpasswd, nginx_argv, render
from tests.deployments._project import DEPLOYMENTS
from tests.fixtures.ports import free_port

PER_ADDRESS = 3
NGINX = "127.0.0.1"  # the proxy's address as the API sees it


@dataclass
class Deployment:
    api: str
    proxy: str
    rendered: Rendered


def _compose_api_command(port: int) -> list[str]:
    """The API's command in compose.yaml, bound to loopback and ``port``."""
    compose = yaml.safe_load((DEPLOYMENTS / "compose" / "compose.yaml").read_text())
    argv = [str(a) for a in compose["services"]["api"]["command"]]
    assert argv[0] == "uvicorn"
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return [sys.executable, "-m", *argv]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nginx does not listen on {port}: {log.read_text()}")


@pytest.fixture(scope="module")
def deployment(db: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The API as compose runs it, trusting the loopback NGINX as compose trusts its proxy."""
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is missing: apt-get install -y nginx (.ci/run installs it)")
    home = tmp_path_factory.mktemp("forwarded")
    port = free_port()
    api = ManagedProcess(
        name="socialflow api (compose command)",
        argv=_compose_api_command(port),
        log_path=home / "api.log",
        health_url=f"http://127.0.0.1:{port}/healthz",
        env={
            "SOCIALFLOW_DATABASE_URL": db.url,
            "SOCIALFLOW_AUTH_LOGIN_ATTEMPTS_PER_IP": str(PER_ADDRESS),
            "SOCIALFLOW_AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT": "1000",
            "SOCIALFLOW_AUTH_LOGIN_WINDOW_SECONDS": "3600",
            # compose names its NGINX's address on the compose network; here NGINX is loopback
            "SOCIALFLOW_API_TRUSTED_PROXIES": json.dumps([NGINX]),
        },
    )
    passwords = home / "htpasswd"
    htpasswd(passwords, "operator", "operator-password")
    rendered = render(
        home / "nginx", api_port=port, prefect_port=free_port(), htpasswd_file=passwords
    )
    api.start()
    nginx: subprocess.Popen[bytes] | None = None
    try:
        api.wait_healthy(timeout=120)
        nginx = subprocess.Popen(nginx_argv(rendered, "-g", "daemon off;"))
        _wait_for_port(rendered.https_port, nginx, rendered.error_log)
        yield Deployment(
            api=f"http://127.0.0.1:{port}",
            proxy=f"https://127.0.0.1:{rendered.https_port}",
            rendered=rendered,
        )
    finally:
        if nginx is not None:
            os.kill(nginx.pid, signal.SIGQUIT)  # graceful stop of the master we started
            try:
                nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(nginx.pid, signal.SIGKILL)
                nginx.wait()
        api.stop()


def _attacker_address() -> str:
    # an address of this test's own: the login_attempt table is shared with other tests
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def _client(deployment: Deployment, source: str) -> httpx.Client:
    """A client whose connections come from ``source`` (any 127/8 address is loopback)."""
    context = ssl.create_default_context(cafile=str(deployment.rendered.cert))
    transport = httpx.HTTPTransport(local_address=source, verify=context)
    return httpx.Client(transport=transport, timeout=30, trust_env=False)


def _guesses(client: httpx.Client, url: str, count: int) -> list[httpx.Response]:
    answers = []
    for n in range(count):
        forged = f"203.0.113.{n + 1}"
        answers.append(
            client.post(
                f"{url}/api/auth/login",
                data={"username": f"victim-{n}@example.com", "password": "guess-guess"},
                headers={
                    "X-Forwarded-For": forged,
                    "X-Real-IP": forged,
                    "Forwarded": f"for={forged}",
                },
            )
        )
    return answers


async def _counted(db: Any, address: str) -> int:
    async with db.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).where(LoginAttempt.key == f"ip:{address}")
        )
    return int(count or 0)


def _limited(answer: httpx.Response) -> bool:
    # the API's own refusal, not NGINX's burst limit (which answers 429 without this body)
    return answer.status_code == 429 and answer.json().get("code") == "rate_limited"


async def test_forged_forwarded_for_through_nginx_gets_no_fresh_budget(
    deployment: Deployment, db: Any
) -> None:
    attacker = _attacker_address()
    with _client(deployment, attacker) as client:
        answers = _guesses(client, deployment.proxy, PER_ADDRESS + 2)
    statuses = [a.status_code for a in answers]
    assert statuses[:PER_ADDRESS] == [400] * PER_ADDRESS, [a.text for a in answers]
    assert all(_limited(a) for a in answers[PER_ADDRESS:]), [a.text for a in answers]
    assert "your address" in answers[-1].json()["message"]
    # counted under the address the attacker connected from, nothing under the forged ones
    assert await _counted(db, attacker) == PER_ADDRESS
    assert await _counted(db, "203.0.113.1") == 0

    # NGINX itself is trusted: another client behind it keeps a budget of its own
    neighbour = _attacker_address()
    with _client(deployment, neighbour) as client:
        first = _guesses(client, deployment.proxy, 1)[0]
    assert first.status_code == 400, first.text
    assert await _counted(db, neighbour) == 1


async def test_forged_forwarded_for_straight_to_the_api_is_ignored(
    deployment: Deployment, db: Any
) -> None:
    attacker = _attacker_address()
    with _client(deployment, attacker) as client:
        answers = _guesses(client, deployment.api, PER_ADDRESS + 2)
    assert [a.status_code for a in answers[:PER_ADDRESS]] == [400] * PER_ADDRESS
    assert all(_limited(a) for a in answers[PER_ADDRESS:]), [a.text for a in answers]
    assert await _counted(db, attacker) == PER_ADDRESS
    assert await _counted(db, "203.0.113.2") == 0
