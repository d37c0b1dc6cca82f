"""The ``socialflow`` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from socialflow.core.embedded_postgres import EmbeddedPostgres, embedded_url
from socialflow.core.stack_state import StackState, read_state, write_state
from socialflow.stack import ManagedProcess, start_and_wait
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


#: what a command that needs none of them must not load: each takes hundreds of milliseconds
HEAVY = ("prefect", "fastapi", "starlette", "sqlalchemy", "langchain", "httpx", "alembic")


def loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The heavy packages loaded by a fresh interpreter once it ran ``code``."""
    probe = (
        "import sys\n"
        f"{code}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules if m.startswith({HEAVY!r})}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return list(eval(result.stdout.strip().splitlines()[-1]))


def test_the_command_module_loads_no_heavy_package() -> None:
    # `socialflow --help` starts in a fraction of a second: commands import what they need
    assert loaded_after("import socialflow.cli") == []
    shown = loaded_after(
        "from socialflow.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'rich.markdown' not in sys.modules  # plain help, without rich's markdown"
    )
    assert shown == []


def test_simulate_loads_no_orm_engine_or_http_client(tmp_path: Path) -> None:
    code = (
        "from socialflow.cli import app\n"
        "try:\n"
        f"    app(['simulate', 'comment', 'price?', '--url', 'http://127.0.0.1:{free_port()}'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 1, exc.code  # nothing listens: cannot reach it\n"
    )
    env = {"SOCIALFLOW_ENVIRONMENT": "development", "SOCIALFLOW_DATA_DIR": str(tmp_path)}
    assert loaded_after(code, env) == []


def test_simulate_posts_to_the_running_stack_s_api(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the error names where it posted
    write_state(
        tmp_path,
        StackState(
            pid=os.getpid(),
            api_url=f"http://127.0.0.1:{port}",
            prefect_api_url="http://127.0.0.1:1/api",
            prefect_ui_url="http://127.0.0.1:1",
        ),
    )
    env = {"SOCIALFLOW_ENVIRONMENT": "development", "SOCIALFLOW_DATA_DIR": str(tmp_path)}
    sent = socialflow("simulate", "comment", "price?", env=env)
    assert sent.returncode == 1
    assert f"cannot reach http://127.0.0.1:{port}/webhooks/instagram: " in sent.stderr
    assert "Traceback" not in sent.stderr


def test_up_says_each_start_as_it_happens(tmp_path: Path) -> None:
    # a process that takes its time to be ready, as Prefect's server does (minutes, at times)
    slow = ManagedProcess(
        name="slow server",
        argv=[
            sys.executable,
            "-c",
            "import time; time.sleep(1.6); print(' ready', flush=True); time.sleep(60)",
        ],
        log_path=tmp_path / "slow.log",
        health_url=None,
    )
    said: list[tuple[float, str]] = []
    began = time.monotonic()
    try:
        took = start_and_wait(
            slow,
            lambda line: said.append((time.monotonic() - began, line)),
            every=0.5,
            serving="at somewhere",
        )
    finally:
        slow.stop()
    lines = [line for _, line in said]
    assert lines[0] == f"slow server: starting (log: {tmp_path / 'slow.log'}) ..."
    waiting = [line for line in lines[1:-1] if line.startswith("slow server: still starting (")]
    assert len(waiting) >= 2, lines  # not silent while it starts
    assert lines[-1] == f"slow server: ready in {took:.1f} s, at somewhere"
    assert took >= 1.6
    assert said[0][0] < said[1][0] < took  # said when it began, not once it was ready


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
    # the node's error, located, and no traceback (Prefect's UI keeps its run logs)
    assert "error: node 'Stop' (s, logic.stop) failed: nope 42" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


def test_a_run_that_cannot_start_says_why_without_a_traceback(tmp_path: Path) -> None:
    result = socialflow(
        "run",
        "examples/hello.json",
        "--input",
        "examples/hello.input.json",
        env={
            "SOCIALFLOW_DATA_DIR": str(tmp_path),
            "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
            "PREFECT_CLIENT_MAX_RETRIES": "0",
        },
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert "cannot run examples/hello.json: " in result.stderr
    assert "is Prefect's server at http://127.0.0.1:" in result.stderr


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
        # each step said as it happened, Prefect's server with how long it took
        steps = [
            "database: ready in ",
            "prefect server: starting (log: ",
            "prefect server: ready in ",
            "database: migrated, ",
            "socialflow api: ready in ",
            "socialflow worker: ready in ",
            "Socialflow is up",
        ]
        at = [output.find(step) for step in steps]
        assert -1 not in at and at == sorted(at), output
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).is_success
        # the stack says what it serves, for `socialflow doctor` (and `simulate`) beside it
        state = read_state(tmp_path / "data")
        assert state is not None
        assert state.api_url == f"http://127.0.0.1:{api_port}"
        assert state.prefect_api_url == f"http://127.0.0.1:{port}/api"
        assert state.gone() == []
        assert set(state.processes) >= {"prefect server", "socialflow api", "socialflow worker"}
        beside = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        doctor = subprocess.run(
            [sys.executable, "-m", "socialflow.cli", "doctor"],
            cwd=ROOT,
            env=beside,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert f"[OK  ] stack: `socialflow up` (pid {proc.pid}) running" in doctor.stdout
        assert f"[OK  ] api: answers at http://127.0.0.1:{api_port}" in doctor.stdout
        assert f"[OK  ] prefect: reachable at http://127.0.0.1:{port}/api" in doctor.stdout
        assert "[OK  ] instagram webhooks: development secret" in doctor.stdout
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
    assert read_state(tmp_path / "data") is None  # removed when the stack stopped
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
