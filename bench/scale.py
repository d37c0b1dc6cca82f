"""Scale-out: signed Instagram comment webhooks through NGINX to several API processes, run by
1 and then by 3 worker processes, on one PostgreSQL and one Prefect server.

Starts, on 127.0.0.1: a Prefect server on a fresh PostgreSQL database, the Graph API emulator
(its own process), ``--apis`` API processes (uvicorn) on a fresh PostgreSQL app database, and
Debian's NGINX with the project's config (deployments/nginx) adapted to loopback with a
self-signed certificate, its upstream listing every API process. ``--accounts`` live Instagram
accounts, each in its own workspace with the flow "comment (keyword) -> condition ->
reply_comment" published.

``--events`` webhooks are posted over HTTPS to NGINX by ``--senders`` concurrent senders that
retry 429/5xx answers as Meta does; ``--duplicates`` of them re-deliver an earlier body byte for
byte (Meta's at-least-once delivery). The events are split evenly over the phases
(``--phases``, worker counts, default 1,3,1,3: alternating, so the shared machine's noise falls
on both counts alike): before a phase its workers are started and ready; the phase's webhooks
are posted; the phase ends when every run it caused is final; then its workers are stopped
(SIGTERM). Figures per phase: webhooks/s answered through NGINX, and runs/s from the first POST
to the last run finished. The scale-out figure is the mean runs/s of the phases with the most
workers over that of the phases with the fewest, all on the same machine, back to back.

Afterwards it checks, from the app database and the emulator's record of calls: one inbox row
per distinct event, one execution per inbox row, every execution completed, one ledger row per
comment (status sent) and exactly one reply POST per comment at the emulator; and that the
Prometheus series moved (events received and deduplicated summed over the API processes'
``/metrics``; node durations from each worker's ``--metrics-port``). ``--json`` writes the
report for tests/test_scale.py. Exit status 1 when a check fails.

Prefect scaled out (``--prefect-apis N``, ``make scale-prefect``): instead of one Prefect server,
N Prefect API processes (``prefect server start --no-services``) behind NGINX, Prefect's
background services in a process of their own, and Redis between them (the machine's server at
``--redis-url``; two empty numbered databases are claimed and flushed afterwards), as
deployments/compose runs it. Every Socialflow process reaches Prefect through that NGINX. In both
shapes the run also checks, from Prefect's database, that every execution's flow run and every
node's task run is recorded there, completed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    REPLY_FLOW,
    ROOT,
    CpuGroups,
    Stack,
    app_settings,
    apply_env,
    base_env,
    emulator_process,
    free_port,
    load_average,
    log,
    pid_of,
    print_table,
    sampled,
)
from _prefect_tier import PrefectTier, claim_redis, prefect_recorded, start_tier

from socialflow.stack import ManagedProcess, api_server

APP_SECRET = "scale-app-secret"
FINAL = ("completed", "failed", "crashed", "cancelled")
RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass
class Post:
    """One webhook delivery: its body and the comment it carries."""

    body: bytes
    comment_id: str
    duplicate: bool


@dataclass
class Phase:
    """What one phase did and how fast."""

    workers: int
    posts: int
    distinct: int
    duplicates: int
    answered: dict[str, int]
    retries: int
    ingest_seconds: float
    runs: int
    run_seconds: float
    webhooks_per_second: float = 0.0
    runs_per_second: float = 0.0
    load_average: str = ""
    #: CPU milliseconds per run, by process group, over the phase
    cpu_ms_per_run: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0


@dataclass
class Report:
    """The scale run: phases, checks and metrics, as tests/test_scale.py reads them."""

    apis: int
    #: Prefect API processes (0: one Prefect server running its own services)
    prefect_apis: int
    accounts: int
    events: int
    distinct: int
    duplicates: int
    phases: list[Phase] = field(default_factory=list)
    inbox_rows: int = 0
    executions: int = 0
    executions_per_event: dict[str, int] = field(default_factory=dict)
    execution_statuses: dict[str, int] = field(default_factory=dict)
    ledger_rows: int = 0
    ledger_statuses: dict[str, int] = field(default_factory=dict)
    ledger_per_comment: dict[str, int] = field(default_factory=dict)
    replies_per_comment: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    #: for comments answered other than once: their ledger rows and runs, for diagnosis
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    #: what Prefect's database holds for the executions' flow runs and the nodes' task runs
    prefect: dict[str, Any] = field(default_factory=dict)
    ratio: float = 0.0
    problems: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ preparation


async def prepare(url: str, accounts: list[tuple[str, str]]) -> None:
    """Migrate, mirror node types, and for each (ig_user_id, token) connect a live account in a
    workspace of its own and publish the reply flow there."""
    from socialflow.migrations import upgrade
    from socialflow.orchestration import EngineRuntime, sync_node_types
    from tests.fixtures.flows import publish
    from tests.fixtures.graph_emulator import connect_account

    await upgrade(url)
    runtime = EngineRuntime.from_settings(app_settings(url))
    try:
        async with runtime.db.session() as session:
            await sync_node_types(session, runtime.registry)
        for ig_user_id, token in accounts:
            account = await connect_account(
                runtime, mode="live", ig_user_id=ig_user_id, token=token
            )
            await publish(
                runtime.db,
                runtime.registry,
                runtime.settings,
                REPLY_FLOW,
                name=f"replies for {ig_user_id}",
                workspace_id=account.workspace_id,
            )
    finally:
        await runtime.aclose()


def make_posts(
    emulator: str, accounts: list[str], events: int, duplicates: int, seed: int
) -> list[Post]:
    """Seed one comment per distinct event in the emulator and build the signed deliveries; a
    duplicate re-delivers an earlier body and is placed after its original."""
    import httpx

    from socialflow.instagram import build_comment, encode_body

    rng = random.Random(seed)
    distinct = events - duplicates
    originals: list[Post] = []
    with httpx.Client(timeout=30, trust_env=False) as client:
        for n in range(distinct):
            account = accounts[n % len(accounts)]
            username = f"fan{n}"
            seeded = client.post(
                f"{emulator}/_emulator/comments",
                json={"account": account, "text": f"price? #{n}", "from_username": username},
            )
            seeded.raise_for_status()
            comment_id = str(seeded.json()["id"])
            body = encode_body(
                build_comment(
                    f"price? #{n}",
                    account_id=account,
                    comment_id=comment_id,
                    from_username=username,
                )
            )
            originals.append(Post(body, comment_id, duplicate=False))
    # each duplicate re-delivers a random earlier event, placed after its original
    later: dict[int, list[Post]] = {}
    for _ in range(duplicates):
        original = rng.randrange(distinct)
        after = rng.randrange(original, distinct)
        copy = Post(originals[original].body, originals[original].comment_id, duplicate=True)
        later.setdefault(after, []).append(copy)
    posts: list[Post] = []
    for n, post in enumerate(originals):
        posts += [post, *later.get(n, [])]
    return posts


# -------------------------------------------------------------------------------- processes


def start_nginx(
    stack: Stack, api_ports: list[int], prefect_ports: list[int]
) -> tuple[str, Path, int]:
    """NGINX with the project's config for loopback in front of ``api_ports`` (and of
    ``prefect_ports`` on the operators' route); (base URL, CA file, master PID)."""
    from tests.deployments._nginx import htpasswd, nginx_argv, render

    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        raise SystemExit("nginx is missing: apt-get install -y nginx (.ci/run installs it)")
    prefix = stack.home / "nginx"
    prefix.mkdir()
    passwords = prefix / "htpasswd"
    htpasswd(passwords, "operator", uuid.uuid4().hex)
    rendered = render(
        prefix / "root",
        api_port=api_ports,
        prefect_port=prefect_ports,
        htpasswd_file=passwords,
        worker_processes=2,
    )
    checked = subprocess.run(nginx_argv(rendered, "-t"), capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {checked.stderr}")
    master = stack.spawn(nginx_argv(rendered, "-g", "daemon off;"))
    base = f"https://127.0.0.1:{rendered.https_port}"
    deadline = time.monotonic() + 30
    import httpx

    context = ssl.create_default_context(cafile=str(rendered.cert))
    while True:
        try:
            if httpx.get(f"{base}/healthz", verify=context, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"nginx did not answer: {rendered.error_log.read_text()}")
        time.sleep(0.1)
    log(f"nginx up at {base} in front of API ports {api_ports}")
    return base, rendered.cert, master.pid


def start_prefect_front(stack: Stack, prefect_ports: list[int]) -> tuple[str, int]:
    """NGINX with the project's config in front of the Prefect API processes, listening on a
    plain loopback port for Socialflow's processes (compose's ``prefect-server`` name and
    Kubernetes' Service do this on a private network); (Prefect API URL, master PID)."""
    import httpx

    from tests.deployments._nginx import htpasswd, nginx_argv, render

    prefix = stack.home / "nginx-prefect"
    prefix.mkdir()
    htpasswd(prefix / "htpasswd", "operator", uuid.uuid4().hex)
    port = free_port()
    rendered = render(
        prefix / "root",
        api_port=free_port(),  # the Socialflow API is not served by this one
        prefect_port=prefect_ports,
        htpasswd_file=prefix / "htpasswd",
        worker_processes=1,
        internal_prefect_port=port,
    )
    master = stack.spawn(nginx_argv(rendered, "-g", "daemon off;"))
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"nginx for prefect did not answer: {rendered.error_log.read_text()}"
            )
        time.sleep(0.1)
    log(f"nginx for prefect at {url} in front of Prefect API ports {prefect_ports}")
    return url, master.pid


def start_workers(
    stack: Stack, env: dict[str, str], count: int, phase: int, concurrency: int
) -> list[tuple[ManagedProcess, int]]:
    """``count`` workers, each serving its metrics on a port of its own; returned ready."""
    started = []
    for i in range(count):
        port = free_port()
        process = stack.start_worker(
            env,
            name=f"worker p{phase}-{i}",
            args=["--concurrency", str(concurrency), "--metrics-port", str(port)],
        )
        started.append((process, port))
    return started


# ------------------------------------------------------------------------------ measurement


async def send_all(
    base: str, cafile: Path, posts: list[Post], senders: int
) -> tuple[Counter[str], int]:
    """Post every delivery with ``senders`` concurrent connections, retrying as Meta does."""
    import httpx

    from socialflow.instagram import signed_headers

    queue: asyncio.Queue[Post] = asyncio.Queue()
    for post in posts:
        queue.put_nowait(post)
    answered: Counter[str] = Counter()
    retries = 0
    context = ssl.create_default_context(cafile=str(cafile))

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal retries
        while not queue.empty():
            post = queue.get_nowait()
            delay = 0.2
            for _ in range(30):
                try:
                    response = await client.post(
                        "/webhooks/instagram",
                        content=post.body,
                        headers=signed_headers(post.body, APP_SECRET),
                    )
                    status = response.status_code
                except httpx.TransportError as exc:
                    status, response = 0, None
                    answered[f"error {type(exc).__name__}"] += 1
                if status and status not in RETRY_STATUSES:
                    answered[str(status)] += 1
                    break
                retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                answered["gave up"] += 1

    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    async with httpx.AsyncClient(
        base_url=base, verify=context, timeout=60, limits=limits, trust_env=False
    ) as client:
        await asyncio.gather(*(sender(client) for _ in range(senders)))
    return answered, retries


async def wait_for_runs(url: str, since: Any, expected: int, timeout: float) -> tuple[int, Any]:
    """Wait until ``expected`` executions created after ``since`` are final; (count, last
    finished_at)."""
    from sqlalchemy import func, select

    from socialflow.core.db import Database
    from socialflow.orchestration import FlowExecution

    db = Database(url)
    deadline = time.monotonic() + timeout
    last_report = 0.0
    try:
        while True:
            async with db.sessionmaker() as session:
                done, last = (
                    await session.execute(
                        select(func.count(), func.max(FlowExecution.finished_at)).where(
                            FlowExecution.created_at >= since,
                            FlowExecution.status.in_(FINAL),
                        )
                    )
                ).one()
            if done >= expected:
                return int(done), last
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {expected} runs final after {timeout:g} s")
            if time.monotonic() - last_report > 15:
                log(f"{done} of {expected} runs final")
                last_report = time.monotonic()
            await asyncio.sleep(0.5)
    finally:
        await db.dispose()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One process's Prometheus samples."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url, timeout=30, trust_env=False).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def summed(urls: list[str], name: str, **labels: str) -> float:
    """A series summed over processes (Prometheus scrapes each one; queries add them up)."""
    wanted = set(labels.items())
    total = 0.0
    for url in urls:
        for (n, lbls), value in scrape(url).items():
            if n == name and wanted <= set(lbls):
                total += value
    return total


async def check(url: str, emulator: str, posts: list[Post], report: Report) -> None:
    """Count inbox rows, executions, ledger rows and the emulator's replies per comment."""
    import httpx
    from sqlalchemy import func, select

    from socialflow.core.db import Database
    from socialflow.instagram import OutboxMessage
    from socialflow.orchestration import FlowExecution, WebhookEvent

    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            report.inbox_rows = int(
                await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0
            )
            per_event = Counter(
                (await session.scalars(select(FlowExecution.trigger_event_id))).all()
            )
            report.executions = sum(per_event.values())
            report.executions_per_event = {
                str(k): v for k, v in Counter(per_event.values()).items()
            }
            statuses = await session.execute(
                select(FlowExecution.status, func.count()).group_by(FlowExecution.status)
            )
            report.execution_statuses = {s: int(n) for s, n in statuses.all()}
            targets = Counter((await session.scalars(select(OutboxMessage.target))).all())
            report.ledger_rows = sum(targets.values())
            report.ledger_per_comment = {str(k): v for k, v in Counter(targets.values()).items()}
            ledger = await session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            report.ledger_statuses = {s: int(n) for s, n in ledger.all()}
    finally:
        await db.dispose()
    calls = httpx.get(f"{emulator}/_emulator/calls", timeout=60, trust_env=False).json()["data"]
    replies = Counter(
        call["path"].strip("/").split("/")[0]
        for call in calls
        if call["method"] == "POST" and call["path"].rstrip("/").endswith("/replies")
    )
    comments = {p.comment_id for p in posts}
    stray = set(replies) - comments
    if stray:
        report.problems.append(f"{len(stray)} replies to comments never posted")
    report.replies_per_comment = {
        str(k): v for k, v in Counter(replies.get(c, 0) for c in comments).items()
    }
    odd = sorted(c for c in comments if replies.get(c, 0) != 1)[:20]
    if odd:
        report.anomalies = await _diagnose(url, odd, replies, calls)


async def _diagnose(
    url: str, comment_ids: list[str], replies: Counter[str], calls: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What the ledger, the runs and the emulator say about comments not answered once."""
    from sqlalchemy import select

    from socialflow.core.db import Database
    from socialflow.instagram import OutboxMessage
    from socialflow.orchestration import FlowExecution

    db = Database(url)
    out = []
    try:
        async with db.sessionmaker() as session:
            for comment_id in comment_ids:
                rows = (
                    await session.scalars(
                        select(OutboxMessage).where(OutboxMessage.target == comment_id)
                    )
                ).all()
                runs = []
                for row in rows:
                    run = await session.get(FlowExecution, row.execution_id)
                    if run is not None:
                        runs.append(
                            {
                                "status": run.status,
                                "attempt": run.attempt,
                                "claimed_by": run.claimed_by,
                                "error": (run.error or "")[:300],
                            }
                        )
                out.append(
                    {
                        "comment": comment_id,
                        "replies": replies.get(comment_id, 0),
                        "reply_calls_at": [
                            c["at"] for c in calls if c["path"].strip("/").startswith(comment_id)
                        ],
                        "ledger": [
                            {
                                "status": r.status,
                                "attempts": r.attempts,
                                "error": f"{r.error_code}: {r.error_message}"[:300],
                                "created_at": str(r.created_at),
                                "sent_at": str(r.sent_at),
                            }
                            for r in rows
                        ],
                        "runs": runs,
                    }
                )
    finally:
        await db.dispose()
    return out


async def check_prefect(url: str, prefect_dsn: str, report: Report, timeout: float) -> None:
    """Every execution's Prefect flow run and every node's task run, as Prefect recorded them."""
    from sqlalchemy import select

    from socialflow.core.db import Database
    from socialflow.orchestration import FlowExecution, NodeRun

    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            flows = (await session.scalars(select(FlowExecution.prefect_flow_run_id))).all()
            nodes = (await session.scalars(select(NodeRun.prefect_task_run_id))).all()
    finally:
        await db.dispose()
    flow_ids = {str(f) for f in flows if f is not None}
    task_ids = {str(n) for n in nodes if n is not None}
    found = await prefect_recorded(prefect_dsn, flow_ids, task_ids, timeout)
    report.prefect = {
        "executions_without_flow_run": sum(1 for f in flows if f is None),
        "node_runs_without_task_run": sum(1 for n in nodes if n is None),
        "flow_runs_expected": len(flow_ids),
        "task_runs_expected": len(task_ids),
        **found,
    }


def scale_ratio(phases: list[Phase]) -> float:
    """Mean runs/s of the phases with the most workers over the phases with the fewest."""
    counts = sorted({p.workers for p in phases})
    if len(counts) < 2:
        return 0.0

    def mean(workers: int) -> float:
        rates = [p.runs_per_second for p in phases if p.workers == workers]
        return sum(rates) / len(rates)

    fewest = mean(counts[0])
    return mean(counts[-1]) / fewest if fewest else 0.0


def verdicts(report: Report) -> list[str]:
    """What is wrong, in words; empty when every event ran once and was answered once."""
    problems = list(report.problems)
    d = report.distinct
    if report.inbox_rows != d:
        problems.append(f"inbox holds {report.inbox_rows} events, {d} were distinct")
    if report.executions_per_event != {"1": d}:
        problems.append(f"executions per event: {report.executions_per_event} (want 1 each)")
    if report.execution_statuses != {"completed": d}:
        problems.append(f"execution statuses: {report.execution_statuses}")
    if report.ledger_per_comment != {"1": d} or report.ledger_statuses != {"sent": d}:
        problems.append(
            f"ledger per comment {report.ledger_per_comment}, statuses {report.ledger_statuses}"
        )
    if report.replies_per_comment != {"1": d}:
        problems.append(f"emulator replies per comment: {report.replies_per_comment}")
    recorded = report.prefect
    if (
        recorded.get("executions_without_flow_run") != 0
        or recorded.get("flow_runs_expected") != d
        or recorded.get("flow_run_states") != {"COMPLETED": d}
    ):
        problems.append(f"Prefect flow runs: {recorded}")
    if (
        recorded.get("node_runs_without_task_run") != 0
        or recorded.get("task_runs_expected") != recorded.get("task_runs")
        or recorded.get("task_run_states") != {"COMPLETED": recorded.get("task_runs_expected")}
    ):
        problems.append(f"Prefect task runs: {recorded}")
    for phase in report.phases:
        bad = {k: v for k, v in phase.answered.items() if k != "200"}
        if bad:
            problems.append(f"phase with {phase.workers} worker(s): answers {bad}")
    return problems


# ------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> Report:
    import httpx

    duplicates = round(args.events * args.duplicates)
    report = Report(
        apis=args.apis,
        prefect_apis=args.prefect_apis,
        accounts=args.accounts,
        events=args.events,
        distinct=args.events - duplicates,
        duplicates=duplicates,
    )
    with Stack("scale") as stack:
        tier: PrefectTier | None = None
        if args.prefect_apis:
            prefect_db = stack.database("prefect server")
            redis = claim_redis(stack, args.redis_url)
            tier = start_tier(
                stack,
                apis=args.prefect_apis,
                database_url=prefect_db.asyncpg_url,
                redis=redis,
                pool_size=args.prefect_pool_size,
            )
            prefect_api, prefect_front_pid = start_prefect_front(stack, tier.api_ports)
        else:
            prefect_api = stack.prefect()
            prefect_db = stack.databases[0]
        emulator_port = free_port()
        emulator = f"http://127.0.0.1:{emulator_port}"
        emulator_proc = stack.start(emulator_process(stack.home, emulator_port))
        db = stack.database("app")
        env = {
            **base_env(stack.home, prefect_api_url=prefect_api),
            "SOCIALFLOW_DATABASE_URL": db.psycopg_url,
            "SOCIALFLOW_PREFECT_API_URL": prefect_api,
            "SOCIALFLOW_INSTAGRAM_GRAPH_INSTAGRAM_URL": emulator,
            "SOCIALFLOW_INSTAGRAM_GRAPH_FACEBOOK_URL": emulator,
            "SOCIALFLOW_INSTAGRAM_APP_SECRETS": json.dumps([APP_SECRET]),
            # every process may open twice its pool: 3 APIs and 3 workers at 10 (the default)
            # would pass PostgreSQL's default max_connections of 100 on this shared server
            "SOCIALFLOW_DATABASE_POOL_SIZE": str(args.pool_size),
        }
        apply_env(env)  # before Prefect or the settings are imported in this process
        accounts = [
            (f"178414{i:011d}", f"IGQ-scale-{uuid.uuid4().hex}") for i in range(args.accounts)
        ]
        with httpx.Client(base_url=emulator, timeout=30, trust_env=False) as control:
            for ig_user_id, token in accounts:
                control.post(
                    "/_emulator/accounts",
                    json={
                        "ig_user_id": ig_user_id,
                        "username": f"shop{ig_user_id[-3:]}",
                        "token": token,
                    },
                ).raise_for_status()
            # the emulator's per-account call limit is off unless set: leave it off
            if args.graph_latency > 0:  # Meta answering late: every reply waits this long
                control.post(
                    "/_emulator/fail",
                    json={
                        "kind": "slow",
                        "seconds": args.graph_latency,
                        "path_contains": "/replies",
                        "count": args.events,
                    },
                ).raise_for_status()
        asyncio.run(prepare(db.psycopg_url, accounts))
        posts = make_posts(emulator, [a for a, _ in accounts], args.events, duplicates, args.seed)
        log(f"{len(posts)} deliveries ({duplicates} duplicates) for {len(accounts)} accounts")

        api_ports, api_pids = [], []
        for i in range(args.apis):
            port = free_port()
            api = stack.start(api_server(stack.home / "logs" / f"api-{i}", port=port, env=env))
            api_ports.append(port)
            api_pids.append(pid_of(api))
        api_metrics = [f"http://127.0.0.1:{p}/metrics" for p in api_ports]
        prefect_ports = tier.api_ports if tier else [int(prefect_api.rsplit(":", 1)[1][:-4])]
        base, cafile, nginx_pid = start_nginx(stack, api_ports, prefect_ports)
        if tier is not None:
            prefect_trees = {**tier.pids, "nginx": [nginx_pid, prefect_front_pid]}
            singles = {"senders (this process)": [os.getpid()]}
            if redis.server_pid:  # the machine's Redis: its CPU in the window, all clients
                singles["redis (whole server)"] = [int(redis.server_pid)]
        else:
            assert stack.prefect_process is not None
            prefect_trees = {
                "prefect server": [pid_of(stack.prefect_process)],
                "nginx": [nginx_pid],
            }
            singles = {"senders (this process)": [os.getpid()]}
        groups = CpuGroups(
            trees={
                **prefect_trees,
                f"api x{args.apis}": api_pids,
                "graph emulator": [pid_of(emulator_proc)],
            },
            singles=singles,
            postgres_dbs={"app": [db.name], "prefect": [prefect_db.name]},
        )

        received_before = summed(
            api_metrics, "socialflow_events_received_total", source="instagram"
        )
        dedup_before = summed(
            api_metrics, "socialflow_events_deduplicated_total", source="instagram"
        )
        share = -(-len(posts) // len(args.phases))
        worker_metrics: list[str] = []
        node_durations = 0.0
        for number, workers in enumerate(args.phases):
            chunk = posts[number * share : (number + 1) * share]
            seen_before = {p.body for p in posts[: number * share]}
            distinct = len({p.body for p in chunk} - seen_before)
            started = start_workers(stack, env, workers, number, args.worker_concurrency)
            urls = [f"http://127.0.0.1:{port}/metrics" for _, port in started]
            worker_metrics += urls
            from socialflow.core.db import utcnow

            since = utcnow()
            load = load_average()
            log(f"phase {number + 1}: {workers} worker(s), {len(chunk)} deliveries, {distinct} new")
            groups.trees["workers"] = [pid_of(process) for process, _ in started]
            with sampled(groups) as splits:
                t0 = time.monotonic()
                answered, retries = asyncio.run(send_all(base, cafile, chunk, args.senders))
                ingest = time.monotonic() - t0
                done, last = asyncio.run(
                    wait_for_runs(db.psycopg_url, since, distinct, args.timeout)
                )
            split = splits[0]
            run_seconds = (last - since).total_seconds() if last else float("nan")
            node_durations += summed(
                urls, "socialflow_node_duration_seconds_count", status="completed"
            )
            for process, _ in started:
                process.stop()
            phase = Phase(
                workers=workers,
                posts=len(chunk),
                distinct=distinct,
                duplicates=len(chunk) - distinct,
                answered=dict(answered),
                retries=retries,
                ingest_seconds=ingest,
                runs=done,
                run_seconds=run_seconds,
                webhooks_per_second=len(chunk) / ingest,
                runs_per_second=done / run_seconds if run_seconds else 0.0,
                load_average=f"{load} -> {load_average()}",
                cpu_ms_per_run={
                    k: 1000 * v / max(done, 1)
                    for k, v in split.seconds.items()
                    if not k.startswith("postgres (all")
                },
                machine_busy=split.machine_busy / max(split.machine_capacity, 1e-9),
            )
            report.phases.append(phase)
            log(
                f"phase {number + 1}: {phase.webhooks_per_second:.0f} webhooks/s, "
                f"{phase.runs_per_second:.2f} runs/s ({retries} retries)"
            )
        report.metrics = {
            "events_received": summed(
                api_metrics, "socialflow_events_received_total", source="instagram"
            )
            - received_before,
            "events_deduplicated": summed(
                api_metrics, "socialflow_events_deduplicated_total", source="instagram"
            )
            - dedup_before,
            "runs_completed_gauge": summed(api_metrics[:1], "socialflow_runs", status="completed"),
            "queue_depth": summed(api_metrics[:1], "socialflow_queue_depth"),
            "worker_node_runs_completed": node_durations,
        }
        asyncio.run(check(db.psycopg_url, emulator, posts, report))
        asyncio.run(check_prefect(db.psycopg_url, prefect_db.dsn, report, timeout=120))
        report.ratio = scale_ratio(report.phases)
        report.problems = verdicts(report)
        if report.problems:  # keep the logs: the stack removes its directory on a clean exit
            kept = Path(f"/tmp/socialflow-scale-logs-{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.copytree(stack.home / "logs", kept)
            log(f"checks failed; logs kept in {kept}")
        for process in stack.children:
            if process.process is not None and process.name.startswith("socialflow api"):
                log(f"api pid {pid_of(process)} log {process.log_path}")
    return report


def print_report(report: Report) -> None:
    print(
        f"\nscale: {report.events} signed comment webhooks ({report.duplicates} duplicates) "
        f"through NGINX (TLS) to {report.apis} API processes, {report.accounts} accounts, flow "
        "comment -> condition -> reply_comment; PostgreSQL app database, "
        + (
            f"{report.prefect_apis} Prefect API processes behind NGINX with the services apart "
            "and Redis"
            if report.prefect_apis
            else "one Prefect server"
        )
        + " on PostgreSQL, Graph API emulator process"
    )
    print_table(
        "phases (each: its own deliveries; runs/s from the first POST to the last run final)",
        ["workers", "deliveries", "new events", "webhooks/s", "runs", "runs/s", "retries", "load"],
        [
            (
                p.workers,
                p.posts,
                p.distinct,
                p.webhooks_per_second,
                p.runs,
                p.runs_per_second,
                p.retries,
                p.load_average,
            )
            for p in report.phases
        ],
    )
    groups = list(report.phases[0].cpu_ms_per_run) if report.phases else []
    print_table(
        "CPU ms per run by process group (the machine's busy share last)",
        ["group", *(f"{p.workers} worker(s)" for p in report.phases)],
        [
            *((g, *(p.cpu_ms_per_run.get(g, 0.0) for p in report.phases)) for g in groups),
            ("machine busy", *(f"{100 * p.machine_busy:.0f} %" for p in report.phases)),
        ],
    )
    counts = sorted({p.workers for p in report.phases})
    if len(counts) >= 2:
        print(
            f"runs/s with {counts[-1]} workers vs {counts[0]} (mean over their phases): "
            f"{report.ratio:.2f}x"
        )
    print(
        f"inbox rows {report.inbox_rows} (distinct {report.distinct}); executions per event "
        f"{report.executions_per_event}; statuses {report.execution_statuses}; ledger "
        f"{report.ledger_statuses}; emulator replies per comment {report.replies_per_comment}"
    )
    print(f"metrics moved: {report.metrics}")
    print(f"recorded in Prefect: {report.prefect}")
    print(f"machine: {os.cpu_count()} cores, shared")
    print("checks: " + ("all passed" if not report.problems else "; ".join(report.problems)))
    for anomaly in report.anomalies:
        print(f"  {json.dumps(anomaly, default=str)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000, help="deliveries in all (5000)")
    parser.add_argument("--duplicates", type=float, default=0.10, help="share re-delivered (0.10)")
    parser.add_argument("--apis", type=int, default=3, help="API processes (3)")
    parser.add_argument("--accounts", type=int, default=10, help="Instagram accounts (10)")
    parser.add_argument(
        "--phases",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 3, 1, 3],
        help="workers per phase, comma-separated (1,3,1,3)",
    )
    parser.add_argument("--senders", type=int, default=32, help="concurrent senders (32)")
    parser.add_argument(
        "--pool-size", type=int, default=5, help="SOCIALFLOW_DATABASE_POOL_SIZE per process (5)"
    )
    parser.add_argument("--worker-concurrency", type=int, default=8, help="runs per worker (8)")
    parser.add_argument(
        "--prefect-apis",
        type=int,
        default=0,
        help="Prefect API processes behind NGINX, services apart, Redis between (0: one server)",
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379", help="Redis server (--prefect-apis)"
    )
    parser.add_argument(
        "--prefect-pool-size",
        type=int,
        default=5,
        help="database pool (and as many overflow) per Prefect process (--prefect-apis; 5)",
    )
    parser.add_argument(
        "--graph-latency",
        type=float,
        default=0.0,
        help="seconds the emulator takes to answer each reply (0): runs that wait on I/O",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="per phase, s (3600)")
    parser.add_argument("--seed", type=int, default=7, help="where duplicates go (7)")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    report = run(args)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2, default=str))
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
