"""The ``socialflow`` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from socialflow.core.embedded_postgres import EmbeddedPostgres, embedded_url
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def socialflow(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socialflow.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.prefect
def test_run_prints_a_row_per_node(tmp_path: Path, database_url: str) -> None:
    result = socialflow(
        "run",
        "examples/hello.json",
        "--input",
        "examples/hello.input.json",
        env={"SOCIALFLOW_DATA_DIR": str(tmp_path), "SOCIALFLOW_DATABASE_URL": database_url},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    rows = {
        line.split()[0] + " " + line.split()[1]: line
        for line in result.stdout.splitlines()[2:]
        if line.strip() and not line.startswith("error")
    }
    assert "completed" in rows["Price reply"]
    assert "It is 25 EUR." in rows["Price reply"]
    assert "skipped" in rows["Other reply"]
    assert "status=completed" in result.stdout.splitlines()[0]


def test_invalid_graph_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    result = socialflow("run", "examples/broken.json", env={"SOCIALFLOW_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "5 problem(s)" in result.stderr
    for code in (
        "invalid_config",
        "unknown_node_kind",
        "unknown_port",
        "too_many_triggers",
        "unreachable",
    ):
        assert f"[{code}]" in result.stderr


@pytest.mark.prefect
def test_failed_run_exits_1(tmp_path: Path) -> None:
    graph = tmp_path / "stop.json"
    graph.write_text(
        '{"nodes": [{"id": "t", "kind": "trigger.manual"}, {"id": "s", "kind": "logic.stop",'
        ' "config": {"outcome": "error", "message": "nope {{ trigger.x }}"}}],'
        ' "edges": [{"source": "t", "source_port": "event", "target": "s"}]}'
    )
    payload = tmp_path / "in.json"
    payload.write_text('{"x": 42}')
    result = socialflow(
        "run", str(graph), "-i", str(payload), env={"SOCIALFLOW_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nope 42" in result.stdout


def test_unreadable_input_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    result = socialflow("validate", str(tmp_path / "bad.json"), env={})
    assert result.returncode == 2
    assert "is not JSON" in result.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_up_starts_the_stack_and_stops_it_on_signal(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    # as `make up` runs it: development, which seeds the demo workspace and flow
    dev = {"SOCIALFLOW_DATA_DIR": str(tmp_path / "data"), "SOCIALFLOW_ENVIRONMENT": "development"}
    env = {**os.environ, **dev}
    env.pop("PREFECT_API_URL", None)
    # as on a fresh machine: no database configured, so the embedded PostgreSQL serves both
    env.pop("SOCIALFLOW_DATABASE_URL", None)
    env.pop("SOCIALFLOW_PREFECT_DATABASE_URL", None)
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
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).is_success
        # no SQLite anywhere: the app and Prefect's server are on the embedded PostgreSQL
        assert not (tmp_path / "data" / "socialflow.db").exists()
        assert not list((tmp_path / "data" / "prefect").glob("*.db"))
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
        app_url = embedded_url(tmp_path / "data", driver="psycopg").replace("+psycopg", "")
        prefect_url = embedded_url(tmp_path / "data", "prefect").replace("+psycopg", "")
        with psycopg.connect(prefect_url) as conn:
            assert conn.execute("SELECT count(*) FROM deployment").fetchone() is not None
        ready = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=10)
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "prefect": "ok"}}
        types = httpx.get(f"http://127.0.0.1:{api_port}/api/node-types", timeout=10)
        assert types.status_code == 401  # the API is up and asks who is calling
        assert (
            "worker" in output
            and "ready" in (tmp_path / "data" / "logs" / "worker.log").read_text()
        )
        # the demo flow answers a simulated price question: stored, dispatched, run by the
        # worker, its reply in the ledger, sandboxed
        sent = socialflow(
            "simulate",
            "comment",
            "how much is the blue one?",
            "--url",
            f"http://127.0.0.1:{api_port}",
            env=dev,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        run_id = _wait_for_demo_run(app_url)
        flow_run = httpx.get(f"http://127.0.0.1:{port}/api/flow_runs/{run_id}", timeout=10).json()
        assert flow_run["state"]["type"] == "COMPLETED"
        assert "trigger:instagram.comment" in flow_run["tags"]
        # the demo flow was published with its deployment
        found = httpx.post(f"http://127.0.0.1:{port}/api/deployments/filter", json={}, timeout=10)
        assert any(d["name"].startswith("Reply to price questions") for d in found.json())
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            EmbeddedPostgres(tmp_path / "data" / "postgres").stop()
            pytest.fail("socialflow up did not stop within 60 s of Ctrl-C")
    for stopped in (f"http://127.0.0.1:{port}/api/health", f"http://127.0.0.1:{api_port}/healthz"):
        with pytest.raises(httpx.HTTPError):
            httpx.get(stopped, timeout=2)
    # the embedded server stopped with the stack
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(app_url, connect_timeout=2)


def _wait_for_demo_run(database_url: str) -> str:
    """The Prefect flow run id of the demo flow's completed run, once its reply is in the
    ledger as sandboxed."""
    import time

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT e.prefect_flow_run_id FROM flow_execution e "
                "JOIN outbox_message o ON o.execution_id = e.id "
                "WHERE e.status = 'completed' AND o.status = 'sandboxed'"
            ).fetchone()
        if row is not None:
            return str(uuid.UUID(hex=str(row[0]).replace("-", "")))
        time.sleep(0.5)
    pytest.fail("the simulated comment did not complete a run with a sandboxed reply in 90 s")


@pytest.mark.slow
@pytest.mark.postgres
def test_user_create_from_the_shell(tmp_path: Path) -> None:
    env = {"SOCIALFLOW_DATA_DIR": str(tmp_path)}
    created = socialflow(
        "user",
        "create",
        "--email",
        "Boss@Example.com",
        "--password",
        "long enough secret",
        "--admin",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    assert "as superuser" in created.stdout
    again = socialflow(
        "user", "create", "--email", "boss@example.com", "--password", "another secret 1", env=env
    )
    assert again.returncode == 2
    assert "exists" in again.stderr
    weak = socialflow("user", "create", "--email", "x@example.com", "--password", "short", env=env)
    assert weak.returncode == 2
    assert "at least 10 characters" in weak.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_commands_use_the_embedded_database_up_made_even_when_the_stack_is_down(
    tmp_path: Path,
) -> None:
    server = EmbeddedPostgres(tmp_path / "postgres")
    server.start()
    server.create_databases("socialflow")
    server.stop()
    env = {"SOCIALFLOW_DATA_DIR": str(tmp_path), "SOCIALFLOW_DATABASE_URL": ""}
    created = socialflow(
        "user", "create", "--email", "ops@example.com", "--password", "long enough secret", env=env
    )
    assert created.returncode == 0, created.stderr
    assert not (tmp_path / "socialflow.db").exists()
    assert server.running_pid() is None  # started for the command, stopped after it
    server.start()
    try:
        url = embedded_url(tmp_path).replace("+psycopg", "")
        with psycopg.connect(url) as conn:
            row = conn.execute('SELECT email FROM "user"').fetchone()
        assert row == ("ops@example.com",)
        # while a server runs (the stack's), a command uses it and leaves it running
        again = socialflow("executions", "prune", env=env)
        assert again.returncode == 0, again.stderr
        assert server.running_pid() is not None
    finally:
        server.stop()


@pytest.mark.postgres
def test_a_second_up_on_the_same_data_directory_is_refused_and_leaves_the_first_alone(
    tmp_path: Path,
) -> None:
    first = EmbeddedPostgres(tmp_path / "postgres")
    first.start()
    try:
        env = {
            "SOCIALFLOW_DATA_DIR": str(tmp_path),
            "SOCIALFLOW_DATABASE_URL": "",
            "SOCIALFLOW_ENVIRONMENT": "development",
        }
        second = socialflow("up", "--prefect-port", "1", "--api-port", "1", env=env)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "already runs" in second.stderr
        assert first.running_pid() is not None  # the first stack's database still serves
    finally:
        first.stop()
