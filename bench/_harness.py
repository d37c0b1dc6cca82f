"""Shared pieces of the benchmarks that start a stack: ports, fresh databases, child processes
stopped by PID on every exit path, per-process CPU accounting from /proc, and tables.

Not a benchmark itself (the leading underscore keeps it out of ``bench/*.py`` listings).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from socialflow.stack import ManagedProcess, prefect_server  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "bench-secret-key-" + uuid.uuid4().hex  # shared by the bench and the API processes
_CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------- basics


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print an aligned table: first column left, the others right."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    line = " | ".join(
        h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header)
    )
    print(line)
    print("-" * len(line))
    for row in cells:
        print(
            " | ".join(
                c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
            )
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


# ------------------------------------------------------------------------------- databases


def admin_dsn() -> str:
    """libpq DSN of the PostgreSQL server the benchmarks create their databases on."""
    url = os.environ.get("SOCIALFLOW_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)
    return url.replace("postgresql+psycopg://", "postgresql://").replace(
        "postgresql+asyncpg://", "postgresql://"
    )


@dataclass
class PgDatabase:
    """A fresh database: its name and the URLs each driver wants."""

    name: str

    @property
    def _base(self) -> str:
        return admin_dsn().rsplit("/", 1)[0]

    @property
    def psycopg_url(self) -> str:
        """For Socialflow (SQLAlchemy + psycopg)."""
        return f"{self._base}/{self.name}".replace("postgresql://", "postgresql+psycopg://", 1)

    @property
    def asyncpg_url(self) -> str:
        """For Prefect's server."""
        return f"{self._base}/{self.name}".replace("postgresql://", "postgresql+asyncpg://", 1)

    @property
    def dsn(self) -> str:
        """For psycopg directly."""
        return f"{self._base}/{self.name}"


# ------------------------------------------------------------------------------- the stack


class Stack(contextlib.ExitStack):
    """Everything one benchmark run started, undone in reverse order on exit, errors included.
    Its temp directory (logs, SQLite files, PREFECT_HOME) is removed after a clean run.

    SIGTERM and SIGHUP become ``SystemExit`` while the stack is open, so ``finally`` blocks run
    and every child started here is stopped by its PID (process group) and every database
    created here is dropped.
    """

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp(prefix=f"socialflow-bench-{prefix}-"))
        self.databases: list[PgDatabase] = []
        self.children: list[ManagedProcess] = []
        self.prefect_process: ManagedProcess | None = None
        self._old_handlers: dict[int, Any] = {}

    def __enter__(self) -> Stack:
        super().__enter__()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, _raise_exit)
        return self

    def __exit__(self, *exc: Any) -> None:  # never swallows the exception
        try:
            super().__exit__(*exc)
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
        if exc[0] is None:  # keep the logs of a failed run, named in the error
            shutil.rmtree(self.home, ignore_errors=True)

    def database(self, role: str) -> PgDatabase:
        """Create ``socialflow_bench_<random>``; it is dropped when the stack closes."""
        import psycopg

        db = PgDatabase(f"socialflow_bench_{uuid.uuid4().hex[:10]}")
        with psycopg.connect(admin_dsn(), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'CREATE DATABASE "{db.name}"')
        self.databases.append(db)
        self.callback(_drop_database, db.name)
        log(f"created database {db.name} ({role})")
        return db

    def start(self, process: ManagedProcess, *, timeout: float = 180.0) -> ManagedProcess:
        """Start ``process``, register its stop, and wait until its health URL answers."""
        self.callback(process.stop)
        self.children.append(process)
        process.start()
        process.wait_healthy(timeout)
        pid = process.process.pid if process.process else "-"
        log(f"{process.name} up (pid {pid}, log {process.log_path})")
        return process

    def start_worker(
        self, env: dict[str, str], *, name: str = "worker", args: Sequence[str] = ()
    ) -> ManagedProcess:
        """Start ``python -m socialflow.cli worker`` and wait for its "ready" line."""
        process = ManagedProcess(
            name=name,
            argv=[sys.executable, "-m", "socialflow.cli", "worker", *args],
            log_path=self.home / "logs" / f"{name.replace(' ', '-')}.log",
            health_url="",
            env=env,
        )
        self.callback(process.stop)
        self.children.append(process)
        process.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.process is not None and process.process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
            with contextlib.suppress(OSError):
                if " ready (" in process.log_path.read_text(errors="replace"):
                    log(f"{name} up (pid {pid_of(process)}, log {process.log_path})")
                    return process
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not get ready in 120 s:\n{process.log_tail()}")

    def spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """A helper process (load client, baseline runner) killed by PID when the stack closes."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.callback(_kill, proc)
        return proc

    def prefect(self, tuning: dict[str, str] | None = None, *, name: str = "") -> str:
        """Start a Prefect server (no UI) on a fresh PostgreSQL database; return its API URL.

        ``tuning``: server settings on top (socialflow.stack.prefect_server's default when None,
        Prefect's own defaults with ``{}``); ``name`` tells several servers apart.
        """
        db = self.database(f"prefect server {name}".strip())
        port = free_port()
        server = prefect_server(
            self.home / f"prefect-server{'-' + name if name else ''}",
            port=port,
            ui=False,
            database_url=db.asyncpg_url,
            tuning=tuning,
        )
        if name:
            server.name = f"prefect server {name}"
        self.start(server)
        self.prefect_process = server
        return f"http://127.0.0.1:{port}/api"


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _drop_database(name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(admin_dsn(), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"dropped database {name}")
    except Exception as exc:  # never mask the benchmark's own error
        log(f"could not drop database {name}: {exc!r}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pid_of(process: ManagedProcess) -> int:
    """The PID of a started ManagedProcess."""
    assert process.process is not None
    return process.process.pid


def log(message: str) -> None:
    """Progress on stderr, so stdout is just the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def base_env(home: Path, *, prefect_api_url: str | None = None) -> dict[str, str]:
    """Environment shared by every Socialflow and Prefect client process of a benchmark."""
    env = {
        "SOCIALFLOW_SECRET_KEY": SECRET_KEY,
        "SOCIALFLOW_DATA_DIR": str(home / "data"),
        "SOCIALFLOW_LOGGING_LEVEL": "WARNING",
        "PREFECT_HOME": str(home / "prefect-client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if prefect_api_url:
        env["PREFECT_API_URL"] = prefect_api_url
    return env


def apply_env(env: dict[str, str]) -> None:
    """Put ``env`` into this process (before Prefect or Socialflow settings are imported)."""
    os.environ.update(env)


# ----------------------------------------------------------------------------- CPU from /proc


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    comm: str
    own: int  # utime + stime, clock ticks
    reaped: int  # cutime + cstime: children that exited and were waited for
    cmdline: str


def _read_procs() -> dict[int, _Proc]:
    procs: dict[int, _Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            cmdline = ""
            if comm == "postgres":
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue  # exited while we looked
        procs[int(entry)] = _Proc(
            pid=int(entry),
            ppid=int(fields[1]),
            comm=comm,
            own=int(fields[11]) + int(fields[12]),
            reaped=int(fields[13]) + int(fields[14]),
            cmdline=cmdline,
        )
    return procs


def _machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


@dataclass
class CpuGroups:
    """Named groups of processes whose CPU time is sampled between two snapshots.

    A group is a set of root PIDs (each counted with all its descendants, live or reaped), or
    the special group of PostgreSQL processes (every process named ``postgres``), split into the
    backends serving the named databases and the rest of the server (other databases on this
    shared server, background processes). Backends that exit inside a window (a pool's overflow
    connections) are followed by ``sampled`` every 0.25 s and attributed by their last reading.
    """

    trees: dict[str, list[int]] = field(default_factory=dict)
    singles: dict[str, list[int]] = field(default_factory=dict)  # these PIDs only, no children
    postgres_dbs: dict[str, list[str]] = field(default_factory=dict)  # label -> database names

    def snapshot(self) -> dict[str, float]:
        procs = _read_procs()
        children: dict[int, list[int]] = {}
        for p in procs.values():
            children.setdefault(p.ppid, []).append(p.pid)
        out: dict[str, float] = {}
        for name, roots in self.trees.items():
            ticks = 0
            seen: set[int] = set()
            stack = [r for r in roots if r in procs]
            while stack:
                pid = stack.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                ticks += procs[pid].own + procs[pid].reaped
                stack.extend(children.get(pid, []))
            out[name] = ticks / _CLK
        for name, pids in self.singles.items():
            out[name] = sum(procs[p].own for p in pids if p in procs) / _CLK
        pg = [p for p in procs.values() if p.comm == "postgres"]
        total = sum(p.own + p.reaped for p in pg)
        attributed = 0
        for label, names in self.postgres_dbs.items():
            ticks = sum(p.own for p in pg if any(f" {n} " in p.cmdline for n in names))
            out[f"postgres: {label}"] = ticks / _CLK
            attributed += ticks
        out["postgres: rest of server"] = (total - attributed) / _CLK
        out["postgres (all, pgrep postgres)"] = total / _CLK
        busy, wall = _machine_busy()
        out["_machine_busy"] = busy / _CLK
        out["_machine_total"] = wall / _CLK
        return out


@dataclass
class CpuSplit:
    """CPU seconds per group over a window, and the machine's busy time in it."""

    seconds: dict[str, float]
    wall: float
    machine_busy: float
    machine_capacity: float

    @classmethod
    def between(cls, before: dict[str, float], after: dict[str, float], wall: float) -> CpuSplit:
        seconds = {
            k: max(0.0, after.get(k, 0.0) - v) for k, v in before.items() if not k.startswith("_")
        }
        return cls(
            seconds=seconds,
            wall=wall,
            machine_busy=after["_machine_busy"] - before["_machine_busy"],
            machine_capacity=after["_machine_total"] - before["_machine_total"],
        )


@contextlib.contextmanager
def sampled(groups: CpuGroups) -> Iterator[list[CpuSplit]]:
    """Sample ``groups`` around the block; the split is appended to the yielded list."""
    out: list[CpuSplit] = []
    tracker = _BackendTracker(groups.postgres_dbs) if groups.postgres_dbs else None
    before = groups.snapshot()
    if tracker is not None:
        tracker.start()
    start = time.monotonic()
    try:
        yield out
    finally:
        if tracker is not None:
            tracker.stop()
    wall = time.monotonic() - start
    split = CpuSplit.between(before, groups.snapshot(), wall)
    if tracker is not None:
        # replace the two-snapshot figures by the tracked ones, which include exited backends
        total = split.seconds.get("postgres (all, pgrep postgres)", 0.0)
        by_label = tracker.seconds()
        for label in groups.postgres_dbs:
            split.seconds[f"postgres: {label}"] = by_label.get(label, 0.0)
        split.seconds["postgres: rest of server"] = max(0.0, total - sum(by_label.values()))
    out.append(split)


class _BackendTracker(threading.Thread):
    """Follows the CPU ticks of the PostgreSQL backends of some databases, including backends
    that start and exit while it runs (their last reading counts)."""

    def __init__(self, databases: dict[str, list[str]], interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="pg-backend-tracker")
        self.databases = databases
        self.interval = interval
        self._halt = threading.Event()
        self._skip: set[int] = set()  # pids known not to be our backends
        self._first: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._label: dict[int, str] = {}
        self._sample(initial=True)

    def _classify(self, pid: int) -> str | None:
        """The pid's label; None after adding it to the skip set, or when it is undecided (a
        freshly forked backend still shows the postmaster's command line)."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            return None
        if comm != "postgres":
            self._skip.add(pid)
            return None
        if not cmdline.startswith("postgres: "):
            return None  # the postmaster, or a backend not yet titled: look again next time
        for label, names in self.databases.items():
            if any(f" {n} " in cmdline for n in names):
                return label
        self._skip.add(pid)
        return None

    def _sample(self, *, initial: bool = False) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid in self._skip:
                continue
            if pid not in self._label:
                label = self._classify(pid)
                if label is None:
                    continue
                self._label[pid] = label
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    fields = f.read().decode(errors="replace").rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            ticks = int(fields[11]) + int(fields[12])
            # a backend first seen after the start began inside the window
            self._first.setdefault(pid, ticks if initial else 0)
            self._last[pid] = ticks

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self._sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self._sample()

    def seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, last in self._last.items():
            label = self._label[pid]
            out[label] = out.get(label, 0.0) + (last - self._first[pid]) / _CLK
        return out


# ------------------------------------------------------------------------- the app database


def four_nodes(auth: str = "header") -> dict[str, Any]:
    """tests/fixtures/flows.py's FOUR_NODES (webhook → set → condition → set), with the webhook's
    auth mode set."""
    import copy

    from tests.fixtures.flows import FOUR_NODES

    graph = copy.deepcopy(FOUR_NODES)
    graph["nodes"][0]["config"] = {"auth": "hmac_sha256" if auth == "hmac" else "header"}
    return graph


def app_settings(url: str) -> Any:
    """Settings of a bench process using the app database at ``url``."""
    from socialflow.core.settings import Settings

    return Settings(database={"url": url}, secret_key=SECRET_KEY)


async def prepare_app_db(
    url: str, graph: dict[str, Any], *, deploy: bool = False
) -> tuple[uuid.UUID, str]:
    """Migrate the app database, mirror the node types, publish ``graph`` as an active webhook
    flow (tests/fixtures/flows.py ``publish``; with ``deploy`` as the API publishes, with its
    Prefect deployment, which needs PREFECT_API_URL); return the flow id and its secret."""
    from socialflow.core.db import Database
    from socialflow.migrations import upgrade
    from socialflow.nodes import default_registry
    from socialflow.orchestration import FlowTrigger, open_trigger_secret, sync_node_types
    from tests.fixtures.flows import publish

    await upgrade(url)
    settings = app_settings(url)
    db = Database(url)
    registry = default_registry()
    try:
        async with db.session() as session:
            await sync_node_types(session, registry)
        flow_id, _ = await publish(
            db, registry, settings, graph, name="bench four nodes", deploy=deploy
        )
        async with db.session() as session:
            trigger = await session.get(FlowTrigger, flow_id)
            assert trigger is not None
            secret = open_trigger_secret(trigger, settings)
    finally:
        await db.dispose()
    return flow_id, secret


async def count_events(url: str, flow_id: uuid.UUID) -> int:
    """Rows of webhook_event stored for the flow."""
    from sqlalchemy import func, select

    from socialflow.core.db import Database
    from socialflow.orchestration import WebhookEvent

    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            found = await session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.flow_id == flow_id)
            )
    finally:
        await db.dispose()
    return int(found or 0)


def load_average() -> str:
    """The 1-minute load average, for the tables' footnotes (the machine is shared)."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


# ------------------------------------------------------------------------------- instagram

#: comment (keyword filter) -> logic.condition -> instagram.reply_comment
REPLY_FLOW: dict[str, Any] = {
    "nodes": [
        {
            "id": "comment",
            "kind": "instagram.comment",
            "label": "Comment",
            "config": {"keywords": ["price", "cost"]},
        },
        {
            "id": "check",
            "kind": "logic.condition",
            "label": "Asks the price?",
            "config": {"expression": "trigger.text | lower is containing('price')"},
        },
        {
            "id": "reply",
            "kind": "instagram.reply_comment",
            "label": "Reply",
            "config": {"message": "Thanks {{ trigger.from_username }}, prices are in your DMs!"},
        },
    ],
    "edges": [
        {"source": "comment", "source_port": "event", "target": "check"},
        {"source": "check", "source_port": "true", "target": "reply"},
    ],
}


def emulator_process(home: Path, port: int) -> ManagedProcess:
    """The Graph API emulator as its own process; healthy once its control API answers."""
    return ManagedProcess(
        name="graph api emulator",
        argv=[sys.executable, "-m", "socialflow.testing.graph_api_emulator", "--port", str(port)],
        log_path=home / "logs" / "emulator.log",
        health_url=f"http://127.0.0.1:{port}/_emulator/calls",
    )
