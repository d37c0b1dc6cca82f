"""Prefect's server scaled out on this machine, for the benchmarks: several API processes
without services, the background services in a process of their own, Redis between them
(messaging, cache, event ordering, leases, docket), as deployments/compose runs it.

Redis is the machine's server (``--redis-url``, loopback): the tier claims two empty numbered
databases there (a claim key set with NX, so two runs never share one) and flushes exactly those
two when the stack closes. Not a benchmark itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _harness import Stack, free_port, log, pid_of

from socialflow.stack import PREFECT_SCALE_OUT, ManagedProcess, prefect_server_tuning

CLAIM_KEY = "socialflow-bench:claimed-by"


@dataclass
class RedisDatabases:
    """Two numbered databases of one Redis server claimed for a run: messaging and docket."""

    url: str
    messaging: int
    docket: int
    server_pid: int | None

    def db_url(self, db: int) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def claim_redis(stack: Stack, url: str) -> RedisDatabases:
    """Claim two empty databases of the Redis at ``url``; both are flushed when the stack
    closes.

    Raises:
        SystemExit: Redis does not answer, or has no two empty databases.
    """
    import redis

    admin = redis.Redis.from_url(url, socket_timeout=5)
    try:
        info = admin.info("server")
        databases = int(admin.config_get("databases").get("databases", 16))
    except redis.RedisError as exc:
        msg = f"Redis at {url} does not answer ({exc}): start one (apt-get install redis-server)"
        raise SystemExit(msg) from exc
    claimed: list[int] = []
    marker = f"{Path(sys.argv[0]).name} pid {os.getpid()}"
    for db in range(databases - 1, 0, -1):  # from the top: applications tend to use 0 first
        client = redis.Redis.from_url(url, db=db, socket_timeout=5)
        if client.dbsize() == 0 and client.set(CLAIM_KEY, marker, nx=True):
            claimed.append(db)
            stack.callback(_flush, client, db)
        if len(claimed) == 2:
            break
    if len(claimed) < 2:
        raise SystemExit(f"Redis at {url} has no two empty databases to use")
    log(f"redis {url}: databases {claimed[0]} (messaging) and {claimed[1]} (docket) claimed")
    return RedisDatabases(url, claimed[0], claimed[1], info.get("process_id"))


def _flush(client: Any, db: int) -> None:
    import redis

    try:
        client.flushdb()
        log(f"redis database {db} flushed")
    except redis.RedisError as exc:  # never mask the benchmark's own error
        log(f"could not flush redis database {db}: {exc!r}")


@dataclass
class PrefectTier:
    """The started tier: its processes and the environment every Prefect process shares."""

    apis: list[ManagedProcess] = field(default_factory=list)
    api_ports: list[int] = field(default_factory=list)
    services: ManagedProcess | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pids(self) -> dict[str, list[int]]:
        out = {f"prefect api x{len(self.apis)}": [pid_of(p) for p in self.apis]}
        if self.services is not None:
            out["prefect services"] = [pid_of(self.services)]
        return out


def tier_env(
    database_url: str, redis: RedisDatabases, *, pool_size: int, events: bool = True
) -> dict[str, str]:
    """What every Prefect server process of the tier is started with."""
    parts = urlsplit(redis.url)
    return {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": str(pool_size),
        "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": str(pool_size),
        **PREFECT_SCALE_OUT,
        "PREFECT_REDIS_MESSAGING_HOST": parts.hostname or "127.0.0.1",
        "PREFECT_REDIS_MESSAGING_PORT": str(parts.port or 6379),
        "PREFECT_REDIS_MESSAGING_DB": str(redis.messaging),
        "PREFECT_SERVER_DOCKET_URL": redis.db_url(redis.docket),
        **prefect_server_tuning(events=events),
    }


def start_tier(
    stack: Stack,
    *,
    apis: int,
    database_url: str,
    redis: RedisDatabases,
    pool_size: int,
) -> PrefectTier:
    """Migrate Prefect's database once, then start ``apis`` API processes (``--no-services``)
    and one ``prefect server services start``; returned healthy."""
    prefect = str(Path(sys.executable).with_name("prefect"))
    tier = PrefectTier(env=tier_env(database_url, redis, pool_size=pool_size))
    home = stack.home / "prefect-tier"
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    subprocess.run(
        [prefect, "server", "database", "upgrade", "-y"],
        env={**os.environ, **tier.env, "PREFECT_HOME": str(home / "migrate")},
        check=True,
        capture_output=True,
        timeout=600,
    )
    log(f"prefect database migrated in {time.monotonic() - t0:.0f} s")
    for i in range(apis):
        port = free_port()
        process = ManagedProcess(
            name=f"prefect api {i}",
            argv=[
                prefect,
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-services",
            ],
            log_path=home / f"api-{i}.log",
            health_url=f"http://127.0.0.1:{port}/api/health",
            env={
                **tier.env,
                "PREFECT_HOME": str(home / f"api-{i}"),
                "PREFECT_UI_ENABLED": "false",
            },
        )
        stack.start(process)
        tier.apis.append(process)
        tier.api_ports.append(port)
    services = ManagedProcess(
        name="prefect services",
        argv=[prefect, "server", "services", "start"],
        log_path=home / "services.log",
        health_url=None,
        env={**tier.env, "PREFECT_HOME": str(home / "services")},
    )
    stack.callback(services.stop)
    stack.children.append(services)
    services.start()
    deadline = time.monotonic() + 120
    while "Starting services" not in services.log_tail(20):
        if services.process is not None and services.process.poll() is not None:
            raise RuntimeError(f"prefect services exited:\n{services.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"prefect services did not start:\n{services.log_tail()}")
        time.sleep(0.2)
    tier.services = services
    log(f"prefect services up (pid {pid_of(services)}, log {services.log_path})")
    return tier


async def prefect_recorded(
    dsn: str, flow_run_ids: set[str], task_run_ids: set[str], timeout: float
) -> dict[str, object]:
    """Wait until Prefect's database holds every flow run and task run named, each in a final
    state (task runs are recorded asynchronously, from events); what it holds then."""
    import psycopg

    deadline = time.monotonic() + timeout
    found: dict[str, object] = {}
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            flows = await (
                await conn.execute(
                    "SELECT id::text, state_type::text FROM flow_run WHERE id::text = ANY(%s)",
                    (list(flow_run_ids),),
                )
            ).fetchall()
            tasks = await (
                await conn.execute(
                    "SELECT id::text, state_type::text FROM task_run WHERE id::text = ANY(%s)",
                    (list(task_run_ids),),
                )
            ).fetchall()
            flow_states = _count(s for _, s in flows)
            task_states = _count(s for _, s in tasks)
            found = {
                "flow_runs": len(flows),
                "flow_run_states": flow_states,
                "task_runs": len(tasks),
                "task_run_states": task_states,
            }
            if flow_states == {"COMPLETED": len(flow_run_ids)} and task_states == {
                "COMPLETED": len(task_run_ids)
            }:
                return found
            if time.monotonic() > deadline:
                return found
            await asyncio.sleep(1)


def _count(values: Iterable[str]) -> dict[str, int]:
    return dict(Counter(values))
