"""Starts and stops the processes of the embedded stack (``socialflow up``, the test suite)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = [
    "PREFECT_SCALE_OUT",
    "PREFECT_SERVER_TUNING",
    "ManagedProcess",
    "api_server",
    "ensure_database",
    "prefect_server",
    "prefect_server_tuning",
    "worker_process",
]

#: Prefect server settings that cut its CPU per run while its UI still shows every flow run,
#: task run, state, tag, deployment and schedule (bench/README.md has the figures, and
#: deployments/README.md what each one costs). Compose and the Kubernetes values carry the same
#: pairs; tests/deployments/test_files.py holds them to this one.
PREFECT_SERVER_TUNING: dict[str, str] = {
    # automations (reactive and proactive triggers and their actions) are not evaluated:
    # Socialflow defines none, and each event was matched against them
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    # no live event stream to websocket subscribers (`prefect events stream`, clients waiting
    # on a run through events); the UI's event feed reads persisted events and stays
    "PREFECT_SERVER_EVENTS_STREAM_OUT_ENABLED": "false",
    # task run states are written 50 to a statement, at most 1 s late, instead of one by one
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "50",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}

#: What several Prefect API processes and their background services share through Redis
#: (prefect-redis): events, the cache, causal ordering of events and concurrency leases. Each
#: process also needs PREFECT_REDIS_MESSAGING_HOST/PORT/DB (and PASSWORD) and
#: PREFECT_SERVER_DOCKET_URL (the background services' coordination; a Redis URL, never
#: ``memory://``, once there is more than one process).
PREFECT_SCALE_OUT: dict[str, str] = {
    "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
    "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
    "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
}


def prefect_server_tuning(*, events: bool = True) -> dict[str, str]:
    """The settings of :data:`PREFECT_SERVER_TUNING`, for a Prefect server's environment.

    Args:
        events: Keep persisting Prefect's events (its UI's event feed). Without them the server
            spends about a quarter less CPU per run; flow runs and task runs are recorded all
            the same.

    Returns:
        Environment variables to pass to ``prefect server start`` or ``services start``.
    """
    env = dict(PREFECT_SERVER_TUNING)
    if not events:
        env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] = "false"
    return env


@dataclass
class ManagedProcess:
    """A child process with a log file and a health URL.

    Args:
        name: Shown in messages.
        argv: The command.
        env: Extra environment variables.
        log_path: Where stdout and stderr go.
        health_url: Answers 2xx once the process is ready; without one, the process is ready
            when its log says ``ready``.
    """

    name: str
    argv: list[str]
    log_path: Path
    health_url: str | None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process in its own process group."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log.close()

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Block until the health URL answers.

        Raises:
            RuntimeError: The process exited or did not become healthy in time; the log's tail
                is in the message.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                msg = f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                raise RuntimeError(msg)
            if self.health_url is None:
                if " ready" in self.log_tail(50):
                    return
            else:
                try:
                    if httpx.get(self.health_url, timeout=2).is_success:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.25)
        msg = f"{self.name} was not healthy after {timeout:.0f} s:\n{self.log_tail()}"
        raise RuntimeError(msg)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def prefect_server(
    home: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 4200,
    database_url: str | None = None,
    ui: bool = True,
    events_retention_days: int | None = None,
    tuning: dict[str, str] | None = None,
) -> ManagedProcess:
    """A Prefect server bound to ``host:port`` keeping its state under ``home``.

    Args:
        home: PREFECT_HOME: its SQLite database and logs live there.
        host: Interface to bind; loopback unless deliberately exposed.
        port: Port to bind.
        database_url: Prefect's own database (``postgresql+asyncpg://…``); SQLite in ``home``
            when empty.
        ui: Serve Prefect's UI too.
        events_retention_days: Days Prefect keeps its events
            (``PREFECT_SERVER_EVENTS_RETENTION_PERIOD``, Prefect's default 7): the
            executions' retention, so both histories end together.
        tuning: Prefect server settings on top; :func:`prefect_server_tuning` when None, ``{}``
            for Prefect's defaults.
    """
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true" if ui else "false",
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": f"http://{host}:{port}/api",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        **(prefect_server_tuning() if tuning is None else tuning),
    }
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    if events_retention_days is not None:
        # an ISO 8601 duration, which Prefect's settings read as a timedelta
        env["PREFECT_SERVER_EVENTS_RETENTION_PERIOD"] = f"P{events_retention_days}D"
    prefect = Path(sys.executable).with_name("prefect")
    return ManagedProcess(
        name="prefect server",
        argv=[str(prefect), "server", "start", "--host", host, "--port", str(port)],
        log_path=home / "server.log",
        health_url=f"http://{host}:{port}/api/health",
        env=env,
    )


def api_server(
    log_dir: Path, *, host: str = "127.0.0.1", port: int = 8000, env: dict[str, str] | None = None
) -> ManagedProcess:
    """The Socialflow API (and web app) under uvicorn on ``host:port``.

    uvicorn's own proxy-headers handling is off: it would believe X-Forwarded-For from any
    loopback peer. The app applies ``SOCIALFLOW_API_TRUSTED_PROXIES`` itself (none by default).
    """
    return ManagedProcess(
        name="socialflow api",
        argv=[
            sys.executable,
            "-m",
            "uvicorn",
            "socialflow.api.app:create_app",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--no-proxy-headers",
            "--no-server-header",
        ],
        log_path=log_dir / "api.log",
        health_url=f"http://{host}:{port}/healthz",
        env=env or {},
    )


def worker_process(log_dir: Path, *, env: dict[str, str] | None = None) -> ManagedProcess:
    """A ``socialflow worker``: runs queued executions and scheduled runs in-process."""
    return ManagedProcess(
        name="socialflow worker",
        argv=[sys.executable, "-m", "socialflow.cli", "worker"],
        log_path=log_dir / "worker.log",
        health_url=None,
        env=env or {},
    )


def ensure_database(server_url: str, database_url: str) -> bool:
    """Create the database ``database_url`` names on the server of ``server_url`` if missing.

    Args:
        server_url: A SQLAlchemy URL of a database that exists on the server (the app's).
        database_url: A SQLAlchemy URL on the same server; only its database name is used.

    Returns:
        True when the database was created now.

    Raises:
        RuntimeError: The server refused; the message names the database and the reason.
    """
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    if not name:
        msg = f"prefect.database_url: {database_url!r} names no database"
        raise RuntimeError(msg)
    server = make_url(server_url).set(drivername="postgresql")
    try:
        with psycopg.connect(
            server.render_as_string(hide_password=False), autocommit=True, connect_timeout=10
        ) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is not None:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        msg = (
            f"cannot create Prefect's database {name!r} on the application's PostgreSQL server "
            f"({str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__}): create "
            "it, or set SOCIALFLOW_PREFECT_DATABASE_URL"
        )
        raise RuntimeError(msg) from exc
    return True
