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

__all__ = ["ManagedProcess", "api_server", "prefect_server", "worker_process"]


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
    """
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true" if ui else "false",
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": f"http://{host}:{port}/api",
        "PREFECT_LOGGING_LEVEL": "WARNING",
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
