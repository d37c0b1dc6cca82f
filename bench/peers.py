"""n8n beside Socialflow: the same job, the same load, one system after the other.

The job: a JSON webhook → a condition "the text contains 'price'" → an HTTP POST of a reply to
a local endpoint this process runs (the reply sink). Nine in ten requests ask the price; every
tenth does not and must stay unanswered.

Systems, each started on 127.0.0.1, measured alone, then stopped by its PID:

  n8n           n8n (``--install`` puts n8n 1.123.50 from npm into ``--n8n-dir``), its own data
                folder (SQLite), no diagnostics, version notifications or templates; the
                workflow (Webhook → If → HTTP Request) imported and activated with its CLI.
                Measured twice: task runners off (``N8N_RUNNERS_ENABLED=false``, everything in
                the main process) and on (``N8N_RUNNERS_ENABLED=true``, internal mode: n8n
                launches a task runner child process).
  socialflow    the API and ``--workers`` workers on PostgreSQL with a Prefect server on
                PostgreSQL, as bench/throughput.py starts them; the flow (trigger.webhook →
                logic.condition → http.request) published with its Prefect deployment.

Per system: a light phase (``--light`` requests paced at ``--light-rate``/s, one in flight)
gives the latency of a lone event, POST sent → reply received by the sink; a burst phase
(``--requests`` requests, ``--concurrency`` in flight, closed loop) gives accepted/s, replies/s
end to end (replies over first send → last reply), burst latency, lost and duplicated replies
(lost: a price question without a reply; duplicated: a second reply to one request or a reply to
a request that did not ask) and the CPU per execution of each process, read from /proc over the
burst window (first send → last reply + ``--settle`` s). Each phase starts after warm-up
requests whose replies have arrived.

Not part of ``make test``: it needs n8n (``--install`` needs the npm registry) and minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    BENCH,
    CpuGroups,
    CpuSplit,
    Stack,
    apply_env,
    base_env,
    free_port,
    load_average,
    log,
    percentile,
    pid_of,
    prepare_app_db,
    print_table,
    sampled,
)

from socialflow.stack import ManagedProcess, api_server

# the newest 1.123.x that runs on Node 20: from 1.123.66 on, n8n needs @n8n/expression-runtime,
# whose isolated-vm 6 builds only against Node 22 or later
N8N_VERSION = "1.123.50"
XLSX_FROM_REGISTRY = "0.18.5"  # the last xlsx on the npm registry (see install())
DEFAULT_N8N_DIR = Path.home() / ".cache" / "socialflow-bench" / "n8n"
REPLY_TEXT = "Thanks for asking! Prices are in your DMs."
WEBHOOK_PATH = "bench-price-reply"
QUIET_EVERY = 10  # every 10th request does not ask the price

# ------------------------------------------------------------------------ the two workflows


def n8n_workflow(sink_url: str, *, workflow_id: str) -> dict[str, Any]:
    """The job as an n8n workflow: Webhook (answers at once) → If (text contains 'price',
    ignoring case) → HTTP Request (POST the reply as JSON to ``sink_url``)."""
    return {
        "id": workflow_id,
        "name": "bench: price question → reply",
        "active": False,
        "settings": {"executionOrder": "v1"},
        "nodes": [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "webhook")),
                "name": "Webhook",
                "type": "n8n-nodes-base.webhook",
                "typeVersion": 2,
                "position": [0, 0],
                "webhookId": str(uuid.uuid5(uuid.NAMESPACE_URL, WEBHOOK_PATH)),
                "parameters": {
                    "httpMethod": "POST",
                    "path": WEBHOOK_PATH,
                    "responseMode": "onReceived",
                    "options": {},
                },
            },
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "if")),
                "name": "Asks the price?",
                "type": "n8n-nodes-base.if",
                "typeVersion": 2,
                "position": [220, 0],
                "parameters": {
                    "conditions": {
                        "options": {
                            "caseSensitive": False,
                            "leftValue": "",
                            "typeValidation": "loose",
                        },
                        "conditions": [
                            {
                                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "price")),
                                "leftValue": "={{ $json.body.text }}",
                                "rightValue": "price",
                                "operator": {"type": "string", "operation": "contains"},
                            }
                        ],
                        "combinator": "and",
                    },
                    "options": {"ignoreCase": True},
                },
            },
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "reply")),
                "name": "Reply",
                "type": "n8n-nodes-base.httpRequest",
                "typeVersion": 4.2,
                "position": [440, 0],
                "parameters": {
                    "method": "POST",
                    "url": sink_url,
                    "sendBody": True,
                    "specifyBody": "json",
                    "jsonBody": (
                        "={{ JSON.stringify({ n: $json.body.n, tag: $json.body.tag, "
                        f"reply: {json.dumps(REPLY_TEXT)} }}) }}}}"
                    ),
                    "options": {},
                },
            },
        ],
        "connections": {
            "Webhook": {"main": [[{"node": "Asks the price?", "type": "main", "index": 0}]]},
            "Asks the price?": {"main": [[{"node": "Reply", "type": "main", "index": 0}], []]},
        },
    }


def socialflow_graph(sink_url: str) -> dict[str, Any]:
    """The job as a Socialflow graph: trigger.webhook → logic.condition → http.request."""
    body = (
        '{"n": {{ trigger.body.n }}, "tag": "{{ trigger.body.tag }}", '
        f'"reply": {json.dumps(REPLY_TEXT)}}}'
    )
    return {
        "nodes": [
            {"id": "hook", "kind": "trigger.webhook", "label": "Webhook"},
            {
                "id": "check",
                "kind": "logic.condition",
                "label": "Asks the price?",
                "config": {"expression": "trigger.body.text | lower is containing('price')"},
            },
            {
                "id": "reply",
                "kind": "http.request",
                "label": "Reply",
                "config": {
                    "method": "POST",
                    "url": sink_url,
                    "body_type": "json",
                    "body": body,
                },
            },
        ],
        "edges": [
            {"source": "hook", "source_port": "event", "target": "check"},
            {"source": "check", "source_port": "true", "target": "reply"},
        ],
    }


def asks_price(n: int) -> bool:
    """Whether request ``n`` asks the price (bench/_load.py ``--quiet-every``)."""
    return n % QUIET_EVERY != QUIET_EVERY - 1


# --------------------------------------------------------------------------- the reply sink


class ReplySink:
    """The local endpoint both systems POST their replies to: records the arrival time
    (``time.monotonic``, the clock the load generator stamps its sends with) of every reply by
    (tag, n)."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, int], list[float]] = {}
        self.malformed = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                now = time.monotonic()
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    doc = json.loads(raw)
                    key = (str(doc["tag"]), int(doc["n"]))
                    ok = doc.get("reply") == REPLY_TEXT
                except (ValueError, KeyError, TypeError):
                    ok = False
                with sink._lock:
                    if ok:
                        sink.arrivals.setdefault(key, []).append(now)
                    else:
                        sink.malformed += 1
                answer = b'{"ok":true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:  # quiet
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reply"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ReplySink:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def replies(self, tag: str) -> dict[int, list[float]]:
        with self._lock:
            return {n: list(ts) for (t, n), ts in self.arrivals.items() if t == tag}

    def wait_for(self, tag: str, wanted: set[int], *, stall: float, limit: float) -> None:
        """Until every request in ``wanted`` has a reply, ``stall`` s pass without a new one,
        or ``limit`` s pass."""
        deadline = time.monotonic() + limit
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            got = self.replies(tag)
            if wanted <= got.keys():
                return
            if len(got) != last_count:
                last_count, last_change = len(got), time.monotonic()
            elif time.monotonic() - last_change > stall:
                log(f"  no new reply for {stall:g} s: {len(wanted - got.keys())} missing")
                return
            time.sleep(0.1)
        log(f"  gave up waiting after {limit:g} s")


# ----------------------------------------------------------------------------- measuring


@dataclass
class Outcome:
    """What one system did with the load."""

    system: str
    requests: int = 0
    accepted: int = 0
    accept_wall: float = 0.0
    expected: int = 0
    replied: int = 0
    lost: int = 0
    duplicated: int = 0
    replies_per_s: float = 0.0
    light_ms: list[float] = field(default_factory=list)
    burst_s: list[float] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per execution, by process group
    cores: float = 0.0  # CPU s of the system's processes per wall s of the burst window
    records: str = ""
    load: str = ""

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.accept_wall if self.accept_wall else 0.0

    @property
    def cpu_per_exec(self) -> float:
        return sum(self.cpu_ms.values())


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        msg = f"load generator {proc.pid} said nothing for {timeout:.0f} s"
        raise RuntimeError(msg)
    line = proc.stdout.readline().decode().strip()
    if not line:
        msg = f"load generator {proc.pid} exited with {proc.wait()}"
        raise RuntimeError(msg)
    return line


def _load_argv(args: argparse.Namespace, hook: str, auth: list[str], **opts: Any) -> list[str]:
    argv = [sys.executable, str(BENCH / "_load.py"), "--urls", hook, *auth]
    argv += ["--quiet-every", str(QUIET_EVERY), "--record-sends", "--deadline", "600"]
    argv += ["--accept-status", str(args.accept_status)]
    for key, value in opts.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def drive(
    args: argparse.Namespace,
    stack: Stack,
    sink: ReplySink,
    outcome: Outcome,
    hook: str,
    auth: list[str],
    groups: CpuGroups,
) -> CpuSplit:
    """The light phase, then the burst; fills ``outcome`` but its CPU figures, and returns the
    CPU split of the burst window."""
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    phases = (
        ("light", {"requests": args.light, "concurrency": 1, "rate": args.light_rate, "offset": 0}),
        ("burst", {"requests": args.requests, "concurrency": args.concurrency, "offset": 100_000}),
    )
    burst: CpuSplit | None = None
    for phase, opts in phases:
        tag = f"{outcome.system.split()[0]}-{phase}-{uuid.uuid4().hex[:6]}"
        first = int(opts["offset"]) + args.warmup
        argv = _load_argv(args, hook, auth, tag=tag, warmup=args.warmup, **opts)
        proc = stack.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        if _readline(proc, 300) != "ready":
            raise RuntimeError("load generator did not finish its warm-up")
        warm = {n for n in range(int(opts["offset"]), first) if asks_price(n)}
        sink.wait_for(tag, warm, stall=60, limit=args.drain_timeout)
        log(f"{outcome.system}: {phase}: {opts['requests']} requests")
        with sampled(groups) as split:
            go = time.monotonic()
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            result = json.loads(_readline(proc, 900))
            sent = {int(n): t for n, t in result["sent"].items()}
            wanted = {n for n in sent if asks_price(n)}
            sink.wait_for(tag, wanted, stall=args.stall, limit=args.drain_timeout)
            time.sleep(args.settle)
        replies = sink.replies(tag)
        firsts = {n: ts[0] for n, ts in replies.items() if n >= first}
        latencies = [firsts[n] - sent[n] for n in wanted if n in firsts]
        if phase == "light":
            outcome.light_ms = [x * 1000 for x in latencies]
            continue
        accepted = sum(v for k, v in result["status"].items() if k == str(args.accept_status))
        outcome.requests = len(sent)
        outcome.accepted = accepted
        outcome.accept_wall = result["end"] - result["start"]
        outcome.expected = len(wanted)
        outcome.replied = sum(1 for n in wanted if n in firsts)
        outcome.lost = outcome.expected - outcome.replied
        outcome.duplicated = sum(len(ts) - 1 for ts in replies.values()) + sum(
            len(replies[n]) for n in replies if not asks_price(n)
        )
        last = max(firsts.values(), default=go)
        outcome.replies_per_s = outcome.replied / (last - go) if last > go else 0.0
        outcome.burst_s = latencies
        burst = split[0]
        log(
            f"  accepted {accepted}/{len(sent)} ({outcome.accepted_per_s:.1f}/s), replies "
            f"{outcome.replied}/{outcome.expected} ({outcome.replies_per_s:.2f}/s)"
        )
        if result["errors"] or set(result["status"]) - {str(args.accept_status)}:
            log(f"  statuses {result['status']}, errors {result['errors']}")
    assert burst is not None
    return burst


def account(outcome: Outcome, seconds: dict[str, float], wall: float) -> None:
    """CPU ms per execution (an accepted request) of each of the system's process groups in
    ``seconds`` (CPU s over the burst window of ``wall`` s)."""
    executions = max(1, outcome.accepted)
    outcome.cpu_ms = {name: s / executions * 1000 for name, s in seconds.items()}
    outcome.cores = sum(seconds.values()) / wall if wall else 0.0


# --------------------------------------------------------------------------------- n8n


def n8n_bin(directory: Path) -> Path:
    return directory / "node_modules" / ".bin" / "n8n"


def install(directory: Path) -> None:
    """``npm install`` n8n ``N8N_VERSION`` into ``directory`` (npm keeps what is there).

    n8n-nodes-base asks for ``xlsx`` as a tarball from SheetJS's own CDN, not the npm registry;
    an npm override takes the registry's last ``xlsx`` instead, so only the registry is needed.
    xlsx serves the spreadsheet nodes, which the benchmark's workflow does not use.
    """
    npm = shutil.which("npm")
    if npm is None:
        msg = "npm is not on PATH: install Node.js 20 (with npm) first"
        raise SystemExit(msg)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "socialflow-bench-n8n",
        "private": True,
        "dependencies": {"n8n": N8N_VERSION},
        "overrides": {"xlsx": XLSX_FROM_REGISTRY},
    }
    (directory / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"installing n8n@{N8N_VERSION} into {directory} (minutes)")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"],
        cwd=directory,
        check=True,
    )
    log(f"installed: n8n {n8n_version(directory)}")


def n8n_version(directory: Path) -> str:
    manifest = directory / "node_modules" / "n8n" / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def n8n_env(home: Path, port: int, *, runners: bool) -> dict[str, str]:
    """n8n's settings: loopback, its own data folder on SQLite, nothing sent to n8n's
    servers, task runners on or off."""
    return {
        "N8N_USER_FOLDER": str(home),
        "N8N_PORT": str(port),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_HOST": "127.0.0.1",
        "N8N_PROTOCOL": "http",
        "DB_TYPE": "sqlite",
        "N8N_ENCRYPTION_KEY": secrets.token_hex(24),
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_DIAGNOSTICS_CONFIG_FRONTEND": "",
        "N8N_DIAGNOSTICS_CONFIG_BACKEND": "",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
        "N8N_RUNNERS_ENABLED": "true" if runners else "false",
        "N8N_RUNNERS_MODE": "internal",
        "N8N_RUNNERS_BROKER_PORT": str(free_port()),  # the machine is shared: never 5679
        "N8N_LOG_LEVEL": "warn",
        "EXECUTIONS_MODE": "regular",
        "NODE_ENV": "production",
    }


def _n8n_cli(binary: Path, env: dict[str, str], log_path: Path, *argv: str) -> str:
    with log_path.open("ab") as out:
        out.write(f"$ n8n {' '.join(argv)}\n".encode())
    done = subprocess.run(
        [str(binary), *argv],
        env={**os.environ, **env},
        capture_output=True,
        timeout=300,
        check=False,
    )
    text = (done.stdout + done.stderr).decode(errors="replace")
    with log_path.open("a") as out:
        out.write(text)
    if done.returncode != 0:
        msg = f"n8n {' '.join(argv)} failed ({done.returncode}):\n{text[-2000:]}"
        raise RuntimeError(msg)
    return text


def run_n8n(args: argparse.Namespace, sink: ReplySink, *, runners: bool) -> Outcome:
    binary = n8n_bin(args.n8n_dir)
    name = "n8n task runners" if runners else "n8n in-process"
    outcome = Outcome(system=name, load=load_average())
    with Stack("peers-n8n") as stack:
        port = free_port()
        data = stack.home / "n8n"
        env = n8n_env(data, port, runners=runners)
        logs = stack.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        workflow_id = secrets.token_hex(8)  # n8n ids: 16 characters
        wf = stack.home / "workflow.json"
        wf.write_text(json.dumps([n8n_workflow(sink.url, workflow_id=workflow_id)]))
        log(f"{name}: importing and activating the workflow")
        _n8n_cli(binary, env, logs / "n8n-cli.log", "import:workflow", f"--input={wf}")
        _n8n_cli(
            binary,
            env,
            logs / "n8n-cli.log",
            "update:workflow",
            f"--id={workflow_id}",
            "--active=true",
        )
        server = ManagedProcess(
            name=name,
            argv=[str(binary), "start"],
            log_path=logs / "n8n.log",
            health_url=f"http://127.0.0.1:{port}/healthz",
            env=env,
        )
        stack.start(server)
        hook = f"http://127.0.0.1:{port}/webhook/{WEBHOOK_PATH}"
        _wait_webhook(hook, {})
        pid = pid_of(server)
        groups = CpuGroups(trees={"n8n (all)": [pid]}, singles={"n8n main": [pid]})
        sqlite = data / ".n8n" / "database.sqlite"
        before = n8n_census(sqlite)
        split = drive(args, stack, sink, outcome, hook, ["--auth", "none"], groups)
        main_s = split.seconds.get("n8n main", 0.0)
        children_s = max(0.0, split.seconds.get("n8n (all)", 0.0) - main_s)
        account(outcome, {"n8n main": main_s, "n8n task runner": children_s}, split.wall)
        outcome.records = records(before, n8n_census(sqlite), "execution_entity")
    return outcome


def n8n_census(sqlite: Path) -> dict[str, int]:
    """Rows n8n keeps per execution, and the bytes of its SQLite files."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{sqlite}?mode=ro", uri=True)) as db:
        out = {
            table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("execution_entity", "execution_data", "execution_metadata")
        }
    out["bytes"] = sum(p.stat().st_size for p in sqlite.parent.glob("database.sqlite*"))
    return out


def records(before: dict[str, int], after: dict[str, int], executions: str) -> str:
    """What the measured phases added: rows per table and bytes, per execution."""
    grown = {k: after[k] - before.get(k, 0) for k in after}
    count = max(1, grown[executions])
    rows = ", ".join(
        f"{table} {n / count:.2f}" for table, n in grown.items() if table not in ("bytes",)
    )
    return (
        f"{grown[executions]} executions; rows per execution: {rows}; "
        f"{grown['bytes'] / count / 1000:.1f} KB per execution on disk"
    )


def _wait_webhook(url: str, headers: dict[str, str]) -> None:
    """Until the webhook answers (n8n registers active workflows' webhooks after start-up)."""
    import httpx

    body = {"n": -1, "tag": "probe", "text": "probe"}  # asks nothing: no reply
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.post(url, json=body, headers=headers, timeout=5, trust_env=False)
            if answer.status_code < 300:
                return
        time.sleep(0.5)
    msg = f"{url} did not accept a POST within 120 s"
    raise RuntimeError(msg)


# --------------------------------------------------------------------------- socialflow


def run_socialflow(args: argparse.Namespace, sink: ReplySink) -> Outcome:
    outcome = Outcome(system="socialflow", load=load_average())
    with Stack("peers-socialflow") as stack:
        prefect_api = stack.prefect()
        prefect_db = stack.databases[0]
        app = stack.database("app")
        env = {
            **base_env(stack.home, prefect_api_url=prefect_api),
            "SOCIALFLOW_DATABASE_URL": app.psycopg_url,
            "SOCIALFLOW_DATABASE_POOL_SIZE": "5",
            "SOCIALFLOW_PREFECT_API_URL": prefect_api,
            "SOCIALFLOW_HTTP_ALLOWED_HOSTS": '["127.0.0.1"]',  # the sink is on loopback
        }
        apply_env(env)  # before Prefect is imported in this process
        graph = socialflow_graph(sink.url)
        flow_id, secret = asyncio.run(prepare_app_db(app.psycopg_url, graph, deploy=True))
        asyncio.run(_ensure_pool())
        port = free_port()
        api = stack.start(api_server(stack.home / "logs", port=port, env=env))
        workers = [
            stack.start_worker(
                env, name=f"worker {i + 1}", args=["--concurrency", str(args.worker_concurrency)]
            )
            for i in range(args.workers)
        ]
        hook = f"http://127.0.0.1:{port}/hooks/{flow_id}"
        _wait_webhook(hook, {"X-Socialflow-Secret": secret})
        assert stack.prefect_process is not None
        groups = CpuGroups(
            trees={
                "prefect server": [pid_of(stack.prefect_process)],
                "worker(s)": [pid_of(w) for w in workers],
                "API": [pid_of(api)],
            },
            postgres_dbs={"prefect db": [prefect_db.name], "app db": [app.name]},
        )
        mine = ["prefect server", "worker(s)", "API", "postgres: prefect db", "postgres: app db"]
        before = asyncio.run(socialflow_census(app.dsn, prefect_db.dsn))
        split = drive(args, stack, sink, outcome, hook, [f"--secret={secret}"], groups)
        account(outcome, {n: split.seconds.get(n, 0.0) for n in mine}, split.wall)
        after = asyncio.run(socialflow_census(app.dsn, prefect_db.dsn))
        outcome.records = records(before, after, "flow_execution")
    return outcome


async def _ensure_pool() -> None:
    from socialflow.orchestration import ensure_work_pool

    await ensure_work_pool()


APP_TABLES = ("flow_execution", "node_run", "webhook_event")
PREFECT_TABLES = (
    "flow_run",
    "flow_run_state",
    "task_run",
    "task_run_state",
    "log",
    "events",
    "event_resources",
)


async def socialflow_census(app_dsn: str, prefect_dsn: str) -> dict[str, int]:
    """Rows Socialflow and Prefect keep, and both databases' bytes."""
    import psycopg

    out: dict[str, int] = {"bytes": 0}
    for dsn, tables, prefix in (
        (app_dsn, APP_TABLES, ""),
        (prefect_dsn, PREFECT_TABLES, "prefect "),
    ):
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            for table in tables:
                cur = await conn.execute(f'SELECT count(*) FROM "{table}"')  # names fixed above
                row = await cur.fetchone()
                out[prefix + table] = int(row[0]) if row else 0
            cur = await conn.execute("SELECT pg_database_size(current_database())")
            row = await cur.fetchone()
            out["bytes"] += int(row[0]) if row else 0
    return out


# ------------------------------------------------------------------------------- the table


def result_rows(outcomes: list[Outcome]) -> list[tuple[Any, ...]]:
    """One row per system: latency, rates, losses, CPU per execution and per core against the
    first system (the reference)."""
    ref = outcomes[0].cpu_per_exec if outcomes else 0.0
    rows = []
    for o in outcomes:
        per_core = 1000 / o.cpu_per_exec if o.cpu_per_exec else float("nan")
        rows.append(
            (
                o.system,
                percentile(o.light_ms, 50),
                percentile(o.light_ms, 99),
                percentile(o.burst_s, 50),
                percentile(o.burst_s, 99),
                o.accepted_per_s,
                o.replies_per_s,
                f"{o.lost}/{o.duplicated}",
                o.cpu_per_exec,
                per_core,
                ref / o.cpu_per_exec if o.cpu_per_exec else float("nan"),
                o.load,
            )
        )
    return rows


HEADER = [
    "system",
    "p50 ms",
    "p99 ms",
    "burst p50 s",
    "burst p99 s",
    "accepted/s",
    "replies/s",
    "lost/dup",
    "CPU ms/exec",
    "execs/CPU-s",
    "per core vs 1st",
    "load avg",
]


def cpu_rows(outcomes: list[Outcome]) -> list[tuple[Any, ...]]:
    """CPU ms per execution by process group (rows) and system (columns)."""
    names: list[str] = []
    for o in outcomes:
        names += [n for n in o.cpu_ms if n not in names]
    rows: list[tuple[Any, ...]] = [
        (n, *(o.cpu_ms.get(n, float("nan")) for o in outcomes)) for n in names
    ]
    rows.append(("total", *(o.cpu_per_exec for o in outcomes)))
    return rows


def print_outcomes(outcomes: list[Outcome], args: argparse.Namespace, version: str) -> None:
    print(
        f"\npeers: webhook → 'text contains price' → HTTP POST of a reply; light phase "
        f"{args.light} requests at {args.light_rate:g}/s, burst {args.requests} requests with "
        f"{args.concurrency} in flight; 1 in {QUIET_EVERY} asks nothing (no reply due); "
        f"n8n {version}; socialflow: {args.workers} worker(s) x {args.worker_concurrency}, "
        f"app and Prefect on PostgreSQL; {os.cpu_count()} cores, shared"
    )
    print_table(
        "latency POST → reply received (p50/p99: light phase; burst: under the burst), "
        "rates and CPU per execution (all of the system's processes over the burst window)",
        HEADER,
        result_rows(outcomes),
    )
    print_table(
        "CPU ms per execution, by process",
        ["process", *(o.system for o in outcomes)],
        cpu_rows(outcomes),
    )
    print("\nwhat each system recorded:")
    for o in outcomes:
        print(f"  {o.system}: {o.records}")


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--install", action="store_true", help=f"npm install n8n@{N8N_VERSION}, then exit"
    )
    parser.add_argument("--n8n-dir", type=Path, default=DEFAULT_N8N_DIR)
    parser.add_argument(
        "--systems",
        default="n8n,n8n-runners,socialflow",
        help="comma-separated, in order: n8n (task runners off), n8n-runners, socialflow",
    )
    parser.add_argument("--requests", type=int, default=600, help="burst requests (600)")
    parser.add_argument("--concurrency", type=int, default=16, help="burst in flight (16)")
    parser.add_argument("--light", type=int, default=40, help="light-phase requests (40)")
    parser.add_argument("--light-rate", type=float, default=2.0, help="light phase per s (2)")
    parser.add_argument("--warmup", type=int, default=20, help="requests before each phase")
    parser.add_argument("--workers", type=int, default=1, help="socialflow workers (1)")
    parser.add_argument("--worker-concurrency", type=int, default=8, help="runs per worker (8)")
    parser.add_argument("--stall", type=float, default=60.0, help="s without a reply: stop")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="s per phase (900)")
    parser.add_argument("--settle", type=float, default=3.0, help="s after the last reply (3)")
    args = parser.parse_args()
    if args.install:
        install(args.n8n_dir)
        return
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - {"n8n", "n8n-runners", "socialflow"}
    if unknown or not systems:
        parser.error(f"--systems: unknown {sorted(unknown)}; allowed n8n, n8n-runners, socialflow")
    for name, value in (("--requests", args.requests), ("--light", args.light)):
        if value < 1:
            parser.error(f"{name} must be at least 1, not {value}")
    version = "-"
    if any(s.startswith("n8n") for s in systems):
        if not n8n_bin(args.n8n_dir).exists():
            parser.error(f"no n8n in {args.n8n_dir}: run bench/peers.py --install first")
        version = n8n_version(args.n8n_dir)
    outcomes = []
    with ReplySink() as sink:
        for system in systems:
            args.accept_status = 202 if system == "socialflow" else 200
            if system == "socialflow":
                outcomes.append(run_socialflow(args, sink))
            else:
                outcomes.append(run_n8n(args, sink, runners=system == "n8n-runners"))
    print_outcomes(outcomes, args, version)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
