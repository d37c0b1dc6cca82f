"""No public key in a running stack: `socialflow up` generates its secret key (kept private in the
data directory) and the demo password; other environments refuse a missing, example or short key.

The attacker here knows what is published: the old default key ``change-me-in-production`` (and
so every key derived from it) and the old demo password.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.api.demo import DEMO_EMAIL, seed_demo
from socialflow.core.db import Database
from socialflow.core.settings import InstagramSettings, SecuritySettings, Settings
from socialflow.instagram import (
    DEMO_ACCOUNT_ID,
    build_comment,
    encode_body,
    sign_sha256,
    webhook_secrets,
)
from socialflow.migrations import upgrade
from socialflow.stack import api_server
from tests.api.conftest import api_settings
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_KEY = "change-me-in-production"
PUBLISHED_DEMO_PASSWORD = "sandbox-only-123"
MASTER_KEY = '["k1:' + "A" * 43 + '="]'


def _env(**values: str | None) -> dict[str, str]:
    """The test process's environment with ``values`` set (None: removed)."""
    env = {**os.environ}
    env.pop("SOCIALFLOW_SECRET_KEY", None)
    for name, value in values.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _published_settings() -> Settings:
    """What a stack on the published default key derives its keys from (built without the
    checks that now refuse that key)."""
    return Settings.model_construct(
        environment="development",
        secret_key=PUBLISHED_KEY,
        instagram=InstagramSettings(),
        security=SecuritySettings(),
    )


# --- outside development: refuse to start ------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "key", "says"),
    [
        ("production", None, "must be set"),
        ("production", PUBLISHED_KEY, "published example value"),
        ("production", "change-me-to-openssl-rand-hex-32", "published example value"),
        ("test", None, "must be set"),
        ("test", "sixteen-chars-ok", "at least 32"),
        ("development", PUBLISHED_KEY, "published example value"),
    ],
)
def test_a_missing_example_or_short_key_refuses_to_start(
    tmp_path: Path, environment: str, key: str | None, says: str
) -> None:
    env = _env(
        SOCIALFLOW_ENVIRONMENT=environment,
        SOCIALFLOW_SECRET_KEY=key,
        SOCIALFLOW_SECURITY_MASTER_KEYS=MASTER_KEY,
        SOCIALFLOW_DATA_DIR=str(tmp_path / "data"),
        SOCIALFLOW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
    )
    started = subprocess.run(
        [sys.executable, "-m", "socialflow.cli", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 2, started.stdout + started.stderr
    assert "SOCIALFLOW_SECRET_KEY" in started.stderr and says in started.stderr
    assert "Traceback" not in started.stderr
    assert not (tmp_path / "app.db").exists()
    assert not (tmp_path / "data" / "secret_key").exists()


def test_the_api_server_refuses_to_start_on_the_published_key(tmp_path: Path) -> None:
    server = api_server(
        tmp_path,
        port=free_port(),
        env={
            "SOCIALFLOW_ENVIRONMENT": "production",
            "SOCIALFLOW_SECRET_KEY": PUBLISHED_KEY,
            "SOCIALFLOW_SECURITY_MASTER_KEYS": MASTER_KEY,
            "SOCIALFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        },
    )
    server.start()
    try:
        with pytest.raises(RuntimeError, match="exited") as refused:
            server.wait_healthy(timeout=60)
    finally:
        server.stop()
    assert "published example value" in str(refused.value)


# --- development: a key of its own, kept private ----------------------------------------------


def test_development_generates_one_private_key_every_process_shares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    env = _env(SOCIALFLOW_ENVIRONMENT="development", SOCIALFLOW_DATA_DIR=str(data))
    read_key = "from socialflow.core.settings import Settings; print(Settings().secret_key)"
    # the processes of `socialflow up` start at about the same time: they must agree on one key
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", read_key], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    keys = {process.communicate(timeout=120)[0].strip() for process in starting}
    assert all(process.returncode == 0 for process in starting)
    assert len(keys) == 1
    key = keys.pop()
    kept = data / "secret_key"
    assert kept.read_text().strip() == key
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert len(key) >= 32 and key != PUBLISHED_KEY
    assert [p.name for p in data.iterdir()] == ["secret_key"]  # no draft left behind
    later = subprocess.run(
        [sys.executable, "-c", read_key], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert later.stdout.strip() == key  # restarts keep sessions and sealed credentials

    # the development webhook and credential keys derive from it, not from a published value
    monkeypatch.delenv("SOCIALFLOW_SECRET_KEY")
    own = Settings(environment="development", data_dir=data)
    assert own.secret_key == key
    assert webhook_secrets(own) != webhook_secrets(_published_settings())
    from socialflow.core.credentials import key_wrapper

    sealed = key_wrapper(own).wrap(b"\x00" * 32)
    with pytest.raises(Exception, match="does not open"):
        key_wrapper(_published_settings()).unwrap(*sealed)


@pytest.mark.prefect
async def test_a_demo_user_with_the_published_password_gets_a_new_one(
    tmp_path: Path, test_registry: Any
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old-demo.db'}"
    await upgrade(url)
    db = Database(url)
    settings = api_settings(url, environment="development", data_dir=str(tmp_path))
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                # an installation seeded by an earlier version: the published demo password
                registered = await client.post(
                    "/api/auth/register",
                    json={"email": DEMO_EMAIL, "password": PUBLISHED_DEMO_PASSWORD},
                )
                assert registered.status_code == 201, registered.text
                old = {"username": DEMO_EMAIL, "password": PUBLISHED_DEMO_PASSWORD}
                stale = (await client.post("/api/auth/token", data=old)).json()["access_token"]

                demo = await seed_demo(settings, db, test_registry)
                assert demo.password is not None and demo.password != PUBLISHED_DEMO_PASSWORD
                assert (await client.post("/api/auth/token", data=old)).status_code == 400
                me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {stale}"})
                assert me.status_code == 401  # whoever used the published password is out
                new = {"username": DEMO_EMAIL, "password": demo.password}
                assert (await client.post("/api/auth/token", data=new)).status_code == 200
                again = await seed_demo(settings, db, test_registry)
                assert again.password is None  # a generated password is left alone
    finally:
        await db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600)  # starts the whole embedded stack (Prefect server, API, worker)
def test_up_runs_on_a_generated_key_and_prints_a_generated_demo_password(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    data = tmp_path / "data"
    env = _env(
        SOCIALFLOW_ENVIRONMENT="development",
        SOCIALFLOW_DATA_DIR=str(data),
        SOCIALFLOW_DATABASE_URL=None,
        PREFECT_API_URL=None,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "socialflow.cli",
            "up",
            "--prefect-port",
            str(port),
            "--api-port",
            str(api_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        output = "".join(lines)
        assert "Socialflow is up" in output, output
        key_file = data / "secret_key"
        assert f"secret key   {key_file}" in output
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key not in output  # the path is printed, never the key
        printed = re.search(rf"sign in as {re.escape(DEMO_EMAIL)} / (\S+);", output)
        assert printed, output
        password = printed.group(1)
        assert password != PUBLISHED_DEMO_PASSWORD
        assert stat.S_IMODE((data / "demo_password").stat().st_mode) == 0o600

        base = f"http://127.0.0.1:{api_port}"
        with httpx.Client(base_url=base, timeout=30, trust_env=False) as http:
            published = {"username": DEMO_EMAIL, "password": PUBLISHED_DEMO_PASSWORD}
            assert http.post("/api/auth/token", data=published).status_code == 400
            signed_in = http.post(
                "/api/auth/token", data={"username": DEMO_EMAIL, "password": password}
            )
            assert signed_in.status_code == 200, signed_in.text
            headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            user_id = http.get("/api/users/me", headers=headers).json()["id"]

            # a webhook signed with the secret derived from the published key runs nothing
            body = encode_body(build_comment("how much is it?", account_id=DEMO_ACCOUNT_ID))
            published_secret = webhook_secrets(_published_settings())[0]
            forged = http.post(
                "/webhooks/instagram",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": sign_sha256(published_secret, body),
                },
            )
            assert forged.status_code == 401, forged.text
            # the stack's own key (`socialflow simulate` reads it from the data dir) works
            own_secret = webhook_secrets(Settings(environment="development", secret_key=key))[0]
            genuine = http.post(
                "/webhooks/instagram",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": sign_sha256(own_secret, body),
                },
            )
            assert genuine.status_code == 200, genuine.text

            # a bearer token forged with the published key (as fastapi-users' JWTs were made)
            # signs nobody in
            with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # a short, public key
                forged_token = jwt.encode(
                    {"sub": user_id, "aud": ["fastapi-users:auth"]},
                    PUBLISHED_KEY,
                    algorithm="HS256",
                )
            assert (
                http.get(
                    "/api/users/me", headers={"Authorization": f"Bearer {forged_token}"}
                ).status_code
                == 401
            )
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("socialflow up did not stop within 60 s of Ctrl-C")
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
