"""Starts and stops the processes of the embedded stack (``socialflow up``, the test suite)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from socialflow.core.settings import Settings
    from socialflow.core.stack_state import StackState

__all__ = [
    "DEMO_PASSWORD_FILE",
    "PREFECT_SCALE_OUT",
    "PREFECT_SERVER_TUNING",
    "ManagedProcess",
    "api_server",
    "ensure_database",
    "prefect_server",
    "prefect_server_tuning",
    "safe_url",
    "serve",
    "start_and_wait",
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

    def wait_healthy(
        self,
        timeout: float = 90.0,
        *,
        progress: Callable[[float], None] | None = None,
        every: float = 10.0,
    ) -> None:
        """Block until the health URL answers.

        Args:
            timeout: Seconds to wait at most.
            progress: Called with the seconds waited so far, every ``every`` seconds while
                the process is not ready yet (a start that takes minutes is not silent).
            every: Seconds between calls of ``progress``.

        Raises:
            RuntimeError: The process exited or did not become healthy in time; the log's tail
                is in the message.
        """
        began = time.monotonic()
        deadline = began + timeout
        next_report = began + every
        while time.monotonic() < deadline:
            if progress is not None and time.monotonic() >= next_report:
                progress(time.monotonic() - began)
                next_report += every
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


def start_and_wait(
    child: ManagedProcess,
    say: Callable[[str], None],
    *,
    timeout: float = 120.0,
    every: float = 10.0,
    serving: str = "",
) -> float:
    """Start ``child`` and wait until it is ready, saying each step as it happens.

    Args:
        child: The process to start.
        say: Prints one line.
        timeout: Seconds to wait at most for it to become ready.
        every: Seconds between "still starting" lines.
        serving: What it serves (a URL), said with "ready".

    Returns:
        The seconds it took.

    Raises:
        RuntimeError: It exited or was not ready in time (see :meth:`ManagedProcess.wait_healthy`).
    """
    began = time.monotonic()
    child.start()
    say(f"{child.name}: starting (log: {child.log_path}) ...")
    child.wait_healthy(
        timeout,
        progress=lambda waited: say(f"{child.name}: still starting ({waited:.0f} s) ..."),
        every=every,
    )
    took = time.monotonic() - began
    say(f"{child.name}: ready in {took:.1f} s" + (f", {serving}" if serving else ""))
    return took


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


#: where `socialflow up` keeps the generated demo password (development only)
DEMO_PASSWORD_FILE = "demo_password"


def serve(
    settings: Settings,
    *,
    prefect_port: int | None,
    api_port: int | None,
    stopping: threading.Event,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> None:
    """``socialflow up``: start the embedded stack, say each step as it happens, run until
    ``stopping`` is set (or a process exits), then stop what it started.

    While it runs, ``<data_dir>/stack.json`` says what it serves
    (:mod:`socialflow.core.stack_state`).

    Args:
        settings: The stack's settings.
        prefect_port: Prefect server port; ``prefect.server_port`` when None.
        api_port: API port; ``api.port`` when None.
        stopping: Set to stop the stack (SIGTERM); Ctrl-C (KeyboardInterrupt) stops it too.
        say: Prints one line of progress.
        warn: Prints one line of trouble.

    Raises:
        EmbeddedPostgresError: The embedded PostgreSQL did not start (one already runs on the
            data directory, say).
        RuntimeError: A database, process or start-up step failed; the message says which.
    """
    from socialflow.core.embedded_postgres import EmbeddedPostgres, cluster_dir
    from socialflow.core.stack_state import StackState, remove_state, write_state

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = prefect_port or settings.prefect.server_port
    host = settings.prefect.server_host
    prefect_api = f"http://{host}:{port}/api"
    os.environ["PREFECT_API_URL"] = prefect_api
    api_host, api_port = settings.api.host, api_port or settings.api.port
    api_url = f"http://{api_host}:{api_port}"
    embedded = None if settings.database.url else EmbeddedPostgres(cluster_dir(data_dir))
    children: list[ManagedProcess] = []
    embedded_started = False
    try:
        began = time.monotonic()
        if embedded is not None:
            say(f"database: starting the embedded PostgreSQL (data: {embedded.pgdata}) ...")
            embedded.start()
            embedded_started = True
            embedded.create_databases("socialflow", "prefect")
        app_url = settings.database_url
        prefect_db = settings.prefect_database_url
        if embedded is None and prefect_db and prefect_db.startswith("postgresql"):
            ensure_database(app_url, prefect_db)
        say(f"database: ready in {time.monotonic() - began:.1f} s, app {safe_url(app_url)}")
        say(f"          Prefect {safe_url(prefect_db or 'SQLite in Prefect home')}")
        env = {
            "PREFECT_API_URL": prefect_api,
            "SOCIALFLOW_DATA_DIR": str(data_dir),
            "SOCIALFLOW_DATABASE_URL": app_url,
            # the API's own links (webhook URLs, emails) name the port it really serves on
            "SOCIALFLOW_API_HOST": api_host,
            "SOCIALFLOW_API_PORT": str(api_port),
        }
        prefect = prefect_server(
            data_dir / "prefect",
            host=host,
            port=port,
            database_url=prefect_db,
            events_retention_days=settings.retention.execution_days,
        )
        # Prefect first: publishing (the demo flow too) creates the flow's deployment there
        children.append(prefect)
        start_and_wait(prefect, say, serving=f"UI at http://{host}:{port}")
        asyncio.run(_prepare(settings, say))
        for child, serving in (
            (api_server(data_dir / "logs", host=api_host, port=api_port, env=env), api_url),
            (worker_process(data_dir / "logs", env=env), ""),
        ):
            children.append(child)
            start_and_wait(child, say, serving=serving)
        processes = {c.name: c.process.pid for c in children if c.process is not None}
        if embedded is not None and (pid := embedded.running_pid()) is not None:
            processes["postgres"] = pid
        state = StackState(
            pid=os.getpid(),
            api_url=api_url,
            prefect_api_url=prefect_api,
            prefect_ui_url=f"http://{host}:{port}",
            processes=processes,
        )
        _say_up(settings, state, write_state(data_dir, state), say)
        while not stopping.is_set() and all(
            c.process is not None and c.process.poll() is None for c in children
        ):
            stopping.wait(1)
        for child in children:
            if child.process is not None and child.process.poll() is not None:
                warn(f"{child.name} exited:\n{child.log_tail()}")
    finally:
        say("stopping ...")
        remove_state(data_dir, pid=os.getpid())
        for child in reversed(children):
            child.stop()
        # never one this stack did not start (another `up` on the same data directory)
        if embedded is not None and embedded_started:
            embedded.stop()


def _say_up(
    settings: Settings, state: StackState, state_file: Path, say: Callable[[str], None]
) -> None:
    """What the stack serves, where its data is, and what to try first."""
    from socialflow.core.settings import generated_key_file

    say("")
    say("Socialflow is up:")
    say(f"  app and API  {state.api_url}   (API docs: /docs)")
    say(f"  Prefect UI   {state.prefect_ui_url}")
    say(
        f"  data         {state_file.parent}   "
        f"(stack: {state_file.name}, read by `socialflow doctor`)"
    )
    generated = generated_key_file(settings)
    if generated is not None:
        say(f"  secret key   {generated} (generated at first start; keep it private)")
    say(f'  try          socialflow simulate comment "how much is it?" --url {state.api_url}')
    say("               then open Runs and the send ledger in the app (nothing is sent)")
    say("Press Ctrl-C to stop.")


async def _prepare(settings: Settings, say: Callable[[str], None]) -> None:
    """Migrate the database, mirror the node registry, seed the demo (development)."""
    from socialflow.core.db import Database
    from socialflow.migrations import upgrade
    from socialflow.nodes import default_registry
    from socialflow.orchestration import sync_node_types

    began = time.monotonic()
    await upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        registry = default_registry()
        async with db.session() as session:
            kinds = await sync_node_types(session, registry)
        say(f"database: migrated, {kinds} node kinds registered ({time.monotonic() - began:.1f} s)")
        if settings.environment == "development":
            from socialflow.api.demo import DEMO_EMAIL, DEMO_FLOW_NAME, seed_demo

            demo = await seed_demo(settings, db, registry)
            kept = settings.data_dir.resolve() / DEMO_PASSWORD_FILE
            password = _demo_password(kept, demo.password)
            say(
                f"demo workspace: sign in as {DEMO_EMAIL} / {password}; flow "
                f"{DEMO_FLOW_NAME!r} is active on sandboxed account {demo.account_id}"
            )
    finally:
        await db.dispose()


def _demo_password(path: Path, generated: str | None) -> str:
    """The demo password to print: the one just generated (kept in ``path``, mode 0600, so
    later starts can print it again), else the one kept from an earlier start."""
    if generated is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(generated + "\n")
        return generated
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return "(the password printed when it was created; 'Forgot password?' resets it)"


def safe_url(url: str) -> str:
    """``url`` with its user and password (if any) masked, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
