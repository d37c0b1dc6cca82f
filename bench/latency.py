"""Event-to-run latency: webhook POST -> first node started -> run completed, for the 4-node
flow (tests/fixtures/flows.py FOUR_NODES: webhook -> set -> condition -> set), one event at a
time, against the same graph run in-process as a baseline.

Starts, on 127.0.0.1: a Prefect server on a fresh PostgreSQL database, the API (uvicorn, as
`socialflow up` runs it) and one `socialflow worker` (python -m socialflow.cli worker) on a
fresh PostgreSQL app database; publishes the flow; then, interleaved, ``--events`` times:

  socialflow: POST /hooks/{flow_id} (X-Socialflow-Secret), then wait (polling the app
              database, bounded) until the run is final. Every stage is read back from the
              rows, all stamped with this machine's clock: webhook_event.received_at and
              .dispatched_at, the worker's claim (flow_execution.lease_until minus the lease),
              flow_execution.started_at (inside the Prefect flow run) and .finished_at, and
              node_run.started_at of the first node; all measured from the POST time;
  baseline:   socialflow.orchestration.start_graph_run in this process (same graph, same
              Prefect server and app database): call -> first node started -> completed.

The first ``--warmup`` events of each kind are not counted. Goal (issue): p50 <= 300 ms from
POST to completion.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Stack,
    app_settings,
    apply_env,
    base_env,
    four_nodes,
    free_port,
    load_average,
    log,
    percentile,
    prepare_app_db,
    print_table,
)

from socialflow.stack import api_server

LEASE_SECONDS = 30.0
FINAL = ("completed", "failed", "crashed", "cancelled")

STAGES = [
    ("202 answered", "answered"),
    ("event stored (webhook_event.received_at)", "stored"),
    ("dispatched (webhook_event.dispatched_at)", "dispatched"),
    ("claimed by the worker (lease_until - lease)", "claimed"),
    ("flow run entered (flow_execution.started_at)", "entered"),
    ("first node started (node_run.started_at)", "first_node"),
    ("last node finished (node_run.finished_at)", "last_node"),
    ("run completed (flow_execution.finished_at)", "completed"),
]


def _ms(later: datetime | None, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000 if later else float("nan")


async def _bench(
    args: argparse.Namespace, url: str, api: str, flow_id: uuid.UUID, secret: str
) -> Any:
    import httpx
    from prefect.context import AsyncClientContext
    from sqlalchemy import func, select

    from socialflow.orchestration import (
        EngineRuntime,
        FlowExecution,
        FlowTrigger,
        GraphSpec,
        NodeRun,
        RunMeta,
        WebhookEvent,
        set_runtime,
        start_graph_run,
    )

    runtime = EngineRuntime.from_settings(app_settings(url))
    set_runtime(runtime)
    db = runtime.db
    async with db.sessionmaker() as session:
        trigger = await session.get(FlowTrigger, flow_id)
        assert trigger is not None
        spec = GraphSpec.model_validate_json(trigger.graph)
        base_meta = {
            "flow_name": trigger.flow_name,
            "workspace_id": trigger.workspace_id,
            "flow_id": trigger.flow_id,
            "flow_version_id": trigger.version_id,
            "version": trigger.version_number,
        }

    async def node_bounds(session: Any, execution_id: uuid.UUID) -> tuple[Any, Any]:
        row = (
            await session.execute(
                select(func.min(NodeRun.started_at), func.max(NodeRun.finished_at)).where(
                    NodeRun.execution_id == execution_id
                )
            )
        ).one()
        return row[0], row[1]

    async def via_worker(client: httpx.AsyncClient, n: int) -> dict[str, float]:
        posted = datetime.now(UTC)
        response = await client.post(
            f"{api}/hooks/{flow_id}",
            json={"n": n, "text": "latency probe"},
            headers={"X-Socialflow-Secret": secret},
        )
        answered = datetime.now(UTC)
        if response.status_code != 202:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text}")
        event_id = uuid.UUID(response.json()["event_id"])
        deadline = time.monotonic() + args.timeout
        while True:
            async with db.sessionmaker() as session:
                status = await session.scalar(
                    select(FlowExecution.status).where(FlowExecution.trigger_event_id == event_id)
                )
            if status in FINAL:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"event {event_id} did not complete in {args.timeout:g} s")
            await asyncio.sleep(args.poll)
        async with db.sessionmaker() as session:
            execution = await session.scalar(
                select(FlowExecution).where(FlowExecution.trigger_event_id == event_id)
            )
            event = await session.get(WebhookEvent, event_id)
            assert execution is not None
            first, last = await node_bounds(session, execution.id)
        if execution.status != "completed":
            raise RuntimeError(
                f"run of event {event_id} ended {execution.status}: {execution.error}"
            )
        assert event is not None
        claimed = (
            execution.lease_until - timedelta(seconds=LEASE_SECONDS)
            if execution.lease_until
            else None
        )
        return {
            "answered": _ms(answered, posted),
            "stored": _ms(event.received_at, posted),
            "dispatched": _ms(event.dispatched_at, posted),
            "claimed": _ms(claimed, posted),
            "entered": _ms(execution.started_at, posted),
            "first_node": _ms(first, posted),
            "last_node": _ms(last, posted),
            "completed": _ms(execution.finished_at, posted),
        }

    async def in_process(n: int) -> dict[str, float]:
        meta = RunMeta(**base_meta)
        trigger_payload = {
            "method": "POST",
            "body": {"n": n, "text": "latency probe"},
            "query": {},
            "headers": {},
        }
        called = datetime.now(UTC)
        state = await start_graph_run(spec, trigger_payload, meta)
        returned = datetime.now(UTC)
        if not state.is_completed():
            raise RuntimeError(f"in-process run ended {state.type}: {state.message}")
        async with db.sessionmaker() as session:
            execution = await session.get(FlowExecution, meta.execution_id)
            assert execution is not None
            first, last = await node_bounds(session, meta.execution_id)
        return {
            "entered": _ms(execution.started_at, called),
            "first_node": _ms(first, called),
            "last_node": _ms(last, called),
            "completed": _ms(execution.finished_at, called),
            "returned": _ms(returned, called),
        }

    worker_rows: list[dict[str, float]] = []
    inproc_rows: list[dict[str, float]] = []
    started = time.monotonic()
    async with (
        AsyncClientContext.get_or_create(),  # one Prefect client, as the worker keeps one
        httpx.AsyncClient(timeout=30, trust_env=False) as client,
    ):
        for i in range(args.warmup + args.events):
            if time.monotonic() - started > args.max_seconds:
                log(f"stopping after {args.max_seconds:g} s (--max-seconds)")
                break
            w = await via_worker(client, i)
            await asyncio.sleep(args.gap)
            b = await in_process(i)
            await asyncio.sleep(args.gap)
            if i >= args.warmup:
                worker_rows.append(w)
                inproc_rows.append(b)
            if (i + 1) % 10 == 0:
                log(
                    f"{i + 1} events: last {w['completed']:.0f} ms via worker, "
                    f"{b['completed']:.0f} ms in process"
                )
    await runtime.aclose()
    return worker_rows, inproc_rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50, help="measured events of each kind (50)")
    parser.add_argument("--warmup", type=int, default=3, help="events not counted (3)")
    parser.add_argument("--gap", type=float, default=0.2, help="pause between runs, s (0.2)")
    parser.add_argument(
        "--poll",
        type=float,
        default=0.05,
        help="completion poll interval, s (0.05); the "
        "figures come from the rows' timestamps, not from when the poll saw them",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per event, s (30)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="whole loop bound (300)")
    parser.add_argument(
        "--worker-concurrency", type=int, default=8, help="socialflow worker --concurrency (8)"
    )
    args = parser.parse_args()
    load_start = load_average()
    with Stack("latency") as stack:
        prefect_api = stack.prefect()
        db = stack.database("app")
        env = {
            **base_env(stack.home, prefect_api_url=prefect_api),
            "SOCIALFLOW_DATABASE_URL": db.psycopg_url,
            "SOCIALFLOW_PREFECT_API_URL": prefect_api,
        }
        apply_env(env)  # before Prefect is imported in this process
        flow_id, secret = asyncio.run(prepare_app_db(db.psycopg_url, four_nodes(), deploy=True))
        port = free_port()
        stack.start(api_server(stack.home / "logs", port=port, env=env))
        stack.start_worker(
            env,
            args=[
                "--concurrency",
                str(args.worker_concurrency),
                "--lease-seconds",
                str(LEASE_SECONDS),
            ],
        )
        log(f"{args.warmup} + {args.events} events, one at a time, interleaved with baseline runs")
        worker_rows, inproc_rows = asyncio.run(
            _bench(args, db.psycopg_url, f"http://127.0.0.1:{port}", flow_id, secret)
        )
    _print(worker_rows, inproc_rows, f"load average {load_start} at start, {load_average()} at end")


def _print(worker: list[dict[str, float]], inproc: list[dict[str, float]], load: str) -> None:
    def p(rows: list[dict[str, float]], key: str, pct: float) -> float:
        return percentile([r[key] for r in rows if key in r and r[key] == r[key]], pct)

    print(
        f"\nlatency: {len(worker)} webhook events, one at a time, 4-node flow, API + 1 worker on "
        "PostgreSQL, Prefect server on PostgreSQL; ms from the POST (socialflow) or from the "
        "start_graph_run call (baseline)"
    )
    print_table(
        "stages, cumulative from t0",
        ["stage", "socialflow p50", "p99", "baseline p50", "p99", "ratio p50"],
        [
            (
                label,
                p(worker, key, 50),
                p(worker, key, 99),
                p(inproc, key, 50),
                p(inproc, key, 99),
                p(worker, key, 50) / p(inproc, key, 50) if key in inproc[0] else float("nan"),
            )
            for label, key in STAGES
        ]
        + [
            (
                "start_graph_run returned",
                float("nan"),
                float("nan"),
                p(inproc, "returned", 50),
                p(inproc, "returned", 99),
                float("nan"),
            )
        ],
    )
    chain = [
        "posted",
        "stored",
        "dispatched",
        "claimed",
        "entered",
        "first_node",
        "last_node",
        "completed",
    ]
    print_table(
        "socialflow, step by step (percentiles of each event's step; p50s need not add up)",
        ["step", "p50 ms", "p99 ms"],
        [
            (
                f"{a} -> {b}",
                percentile([r[b] - r.get(a, 0.0) for r in worker], 50),
                percentile([r[b] - r.get(a, 0.0) for r in worker], 99),
            )
            for a, b in itertools.pairwise(chain)
        ],
    )
    print(f"machine: {os.cpu_count()} cores, shared; {load}")
    done = p(worker, "completed", 50)
    print(
        f"goal (issue): p50 <= 300 ms POST -> completed; measured p50 {done:.0f} ms, "
        f"p99 {p(worker, 'completed', 99):.0f} ms (baseline in process: "
        f"p50 {p(inproc, 'completed', 50):.0f} ms)"
    )


if __name__ == "__main__":
    main()
