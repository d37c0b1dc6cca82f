"""``socialflow doctor``: a healthy configuration passes; broken ones fail with the fix to apply."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from socialflow.cli import app
from socialflow.core.settings import Settings
from socialflow.core.stack_state import StackState, read_state, remove_state, write_state
from socialflow.doctor import Check, Status, diagnose

MASTER_KEY = "k1:" + base64.b64encode(b"0" * 32).decode()


def healthy(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "secret_key": "a-real-secret-key-for-the-doctor",
        "database": {"url": database_url},
        "security": {"master_keys": [MASTER_KEY]},
        "knowledge": {"storage_url": str(tmp_path / "uploads")},
        "instagram": {"app_secrets": ["app-secret"], "verify_token": "verify-me"},
    }
    values.update(overrides)
    return Settings(**values)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.prefect
async def test_a_healthy_configuration_passes(db: Any, tmp_path: Path) -> None:
    checks = await diagnose(
        healthy(db.url, tmp_path), prefect_api_url=os.environ["PREFECT_API_URL"]
    )
    found = by_name(checks)
    assert [c.line() for c in checks if c.status is Status.FAIL] == []
    for name in ("secret key", "master keys", "database", "migrations", "prefect"):
        assert found[name].status is Status.OK, found[name].line()
    assert found["object storage"].status is Status.OK
    assert found["instagram webhooks"].status is Status.OK
    assert not any(tmp_path.iterdir())  # the storage check left nothing behind


async def test_bad_database_and_prefect_urls_fail_with_the_fix(db: Any, tmp_path: Path) -> None:
    port = closed_port()
    settings = healthy(f"postgresql+psycopg://postgres@127.0.0.1:{port}/nope", tmp_path)
    checks = by_name(await diagnose(settings, prefect_api_url=f"http://127.0.0.1:{port}/api"))
    assert checks["database"].status is Status.FAIL
    assert "SOCIALFLOW_DATABASE_URL" in checks["database"].fix
    assert "migrations" not in checks
    assert checks["prefect"].status is Status.FAIL
    assert "SOCIALFLOW_PREFECT_API_URL" in checks["prefect"].fix
    assert f"127.0.0.1:{port}" in checks["prefect"].line()


@pytest.mark.prefect
async def test_placeholders_and_missing_pieces_are_named(tmp_path: Path) -> None:
    settings = Settings(
        environment="test",
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}"},
        security={"master_keys": ["k1:not-base64!"]},
        knowledge={"vector_store": "pinecone"},
    )
    checks = by_name(await diagnose(settings, prefect_api_url=os.environ["PREFECT_API_URL"]))
    assert checks["master keys"].status is Status.FAIL
    assert checks["database"].status is Status.FAIL and "db upgrade" in checks["database"].fix
    assert checks["vector store"].status is Status.FAIL
    assert "PINECONE_API_KEY" in checks["vector store"].fix
    assert checks["instagram webhooks"].status is Status.WARN  # not production
    assert not (tmp_path / "missing.db").exists()  # the doctor does not create databases


def test_the_command_exits_1_and_prints_the_fix(tmp_path: Path) -> None:
    port = closed_port()
    env = {
        "SOCIALFLOW_ENVIRONMENT": "development",
        "SOCIALFLOW_DATA_DIR": str(tmp_path),
        "SOCIALFLOW_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/nope",
        "SOCIALFLOW_PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    result = CliRunner().invoke(app, ["doctor"], env=env)
    assert result.exit_code == 1, result.output
    assert "[FAIL] database: unreachable" in result.output
    assert "fix: check SOCIALFLOW_DATABASE_URL" in result.output
    assert "[FAIL] prefect" in result.output
    assert "check(s) failed" in result.output
    bad = CliRunner().invoke(app, ["doctor"], env={**env, "SOCIALFLOW_ENVIRONMENT": "staging"})
    assert bad.exit_code == 1
    assert "[FAIL] settings: environment" in bad.output


def test_the_doctor_says_which_database_the_app_and_prefect_use(tmp_path: Path) -> None:
    port = closed_port()
    env = {
        "SOCIALFLOW_ENVIRONMENT": "development",
        "SOCIALFLOW_DATA_DIR": str(tmp_path),
        "SOCIALFLOW_PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "SOCIALFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        "SOCIALFLOW_PREFECT_DATABASE_URL": "",
    }
    sqlite = CliRunner().invoke(app, ["doctor"], env=env).output
    assert "[OK  ] database kind: SQLite" in sqlite
    assert f"[WARN] prefect database: SQLite in {tmp_path.resolve() / 'prefect'}" in sqlite

    server = {**env, "SOCIALFLOW_DATABASE_URL": f"postgresql+psycopg://sf:pw@127.0.0.1:{port}/app"}
    on_server = CliRunner().invoke(app, ["doctor"], env=server).output
    assert (
        f"[OK  ] database kind: PostgreSQL (postgresql+psycopg://sf:***@127.0.0.1:{port}/app)"
        in (on_server)
    )
    assert "[OK  ] prefect database: database 'prefect' on the application's server" in on_server

    # the cluster `socialflow up` made, while the stack is down
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "PG_VERSION").write_text("18\n")
    embedded = CliRunner().invoke(app, ["doctor"], env={**env, "SOCIALFLOW_DATABASE_URL": ""})
    assert f"database kind: embedded PostgreSQL in {tmp_path.resolve() / 'postgres'}" in (
        embedded.output
    )
    assert "[OK  ] prefect database: database 'prefect' on the embedded PostgreSQL" in (
        embedded.output
    )
    assert "[FAIL] database: unreachable" in embedded.output
    assert "fix: start the stack with `socialflow up`" in embedded.output


def _stack_env(tmp_path: Path, monkeypatch: Any) -> Settings:
    # as a shell beside `socialflow up` is: development, nothing but the data directory set
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("SOCIALFLOW_PREFECT_API_URL", raising=False)
    return Settings(
        environment="development",
        data_dir=tmp_path,
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"},
    )


async def test_the_doctor_checks_the_running_stack_it_finds_in_the_data_directory(
    tmp_path: Path, monkeypatch: Any
) -> None:
    settings = _stack_env(tmp_path, monkeypatch)
    without = by_name(await diagnose(settings))
    assert without["stack"].status is Status.OK
    assert "no `socialflow up` running" in without["stack"].message
    assert without["prefect"].status is Status.WARN  # no URL anywhere
    assert "api" not in without

    api_port, prefect_port = closed_port(), closed_port()
    write_state(
        tmp_path,
        StackState(
            pid=os.getpid(),
            api_url=f"http://127.0.0.1:{api_port}",
            prefect_api_url=f"http://127.0.0.1:{prefect_port}/api",
            prefect_ui_url=f"http://127.0.0.1:{prefect_port}",
            processes={"socialflow worker": os.getpid()},
        ),
    )
    found = by_name(await diagnose(settings))
    assert found["stack"].status is Status.OK, found["stack"].line()
    assert f"API at http://127.0.0.1:{api_port}" in found["stack"].message
    # the stack's URLs are the ones checked (nothing answers on them here)
    assert found["api"].status is Status.FAIL
    assert f"127.0.0.1:{api_port}" in found["api"].message
    assert found["prefect"].status is Status.FAIL
    assert f"127.0.0.1:{prefect_port}/api" in found["prefect"].message
    # development: webhooks are signed with the secret derived from the secret key
    assert found["instagram webhooks"].status is Status.OK, found["instagram webhooks"].line()
    assert "development secret" in found["instagram webhooks"].message


async def test_a_stack_whose_processes_are_gone_is_reported_stopped(
    tmp_path: Path, monkeypatch: Any
) -> None:
    settings = _stack_env(tmp_path, monkeypatch)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_state(
        tmp_path,
        StackState(
            pid=os.getpid(),
            api_url="http://127.0.0.1:1",
            prefect_api_url="http://127.0.0.1:1/api",
            prefect_ui_url="http://127.0.0.1:1",
            processes={"socialflow api": gone.pid},
        ),
    )
    found = by_name(await diagnose(settings))
    assert found["stack"].status is Status.WARN
    assert f"socialflow api (pid {gone.pid}) no longer running" in found["stack"].message
    assert "api" not in found  # a stopped stack's URLs are not checked
    assert found["prefect"].status is Status.WARN
    # only the stack that wrote the file removes it
    remove_state(tmp_path, pid=gone.pid)
    assert read_state(tmp_path) is not None
    remove_state(tmp_path, pid=os.getpid())
    assert read_state(tmp_path) is None
