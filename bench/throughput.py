"""Sustained throughput: flow runs completed per second over a steady window, for the 4-node
flow (tests/fixtures/flows.py FOUR_NODES; every node a Prefect task run), against raw Prefect,
and where the CPU goes.

Starts, on 127.0.0.1: a Prefect server on a fresh PostgreSQL database; the API (uvicorn, as
`socialflow up` runs it) and ``--workers`` `socialflow worker` processes (--concurrency each)
on a fresh PostgreSQL app database; and the baseline runner, a child process that runs raw
Prefect: an async flow awaiting four no-op async tasks in a chain (the 4-node graph's shape),
``--concurrency`` x ``--workers`` flow runs at once, in-process, with one Prefect client as the
worker keeps one.

``--window continuous`` (the default): each variant is measured over one continuous
``--duration`` s window (60 s) of steady load after ``--warmup`` s of ramp-up, the baseline
first, then socialflow. ``--window alternating``: the ``--duration`` of each is split into
``--rounds`` shorter segments that alternate (baseline, socialflow, baseline, ...), each after
its own ramp-up, so that both see the same shared machine when its load drifts. In a socialflow
window this process POSTs webhooks to the API
continuously, keeping the backlog (pending inbox events + queued executions) near
``--backlog``, and counts flow_execution rows whose finished_at falls in the window; then it
stops feeding and lets the backlog drain before the next window. The baseline runner counts
flow runs that finished in its window.

CPU seconds per process group are read from /proc at each window's edges (utime+stime of each
process tree, reaped children included): Prefect's server, the worker(s), the API, the
baseline runner, this process (the feeder), and PostgreSQL (every process named postgres, as
`pgrep postgres` finds them: the backends of the Prefect and the app database, and the rest of
the server, which on this shared machine includes other users' databases and backends that
exited in the window). Idle processes are sampled too: the worker and API during baseline
segments, the runner during socialflow segments.

Goal (issue): socialflow >= 0.9x raw Prefect runs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    CpuGroups,
    CpuSplit,
    Stack,
    apply_env,
    base_env,
    four_nodes,
    free_port,
    load_average,
    log,
    pid_of,
    prepare_app_db,
    print_table,
    sampled,
)

from socialflow.stack import api_server

# -------------------------------------------------------- the raw Prefect baseline (a child)


def raw_prefect_child(concurrency: int) -> None:
    """Child-process mode. Reads ``run WARMUP DURATION`` lines from stdin; for each, runs the
    raw flow with ``concurrency`` lanes, prints ``window-start``, ``window-end`` and one JSON
    line. ``quit`` or end of input stops it."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.context import AsyncClientContext

    @task(cache_policy=NO_CACHE, persist_result=False)
    async def noop(value: Any) -> Any:
        return value

    @flow(name="bench-raw-four-tasks", persist_result=False)
    async def four_tasks(n: int) -> Any:
        value: Any = {"n": n}
        for _ in range(4):
            value = await noop(value)
        return value

    counter = 0

    async def segment(warmup: float, duration: float) -> dict[str, Any]:
        nonlocal counter
        finished: list[float] = []
        failed = 0
        begin = time.monotonic()
        window = (begin + warmup, begin + warmup + duration)

        async def lane() -> None:
            nonlocal counter, failed
            while time.monotonic() < window[1]:
                counter += 1
                state = await four_tasks(counter, return_state=True)
                if state.is_completed():
                    finished.append(time.monotonic())
                else:
                    failed += 1

        async def marks() -> None:
            await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
            print("window-start", flush=True)
            await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
            print("window-end", flush=True)

        await asyncio.gather(marks(), *(lane() for _ in range(concurrency)))
        return {
            "in_window": sum(1 for t in finished if window[0] <= t < window[1]),
            "failed": failed,
        }

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        async with AsyncClientContext.get_or_create():
            print("ready", flush=True)
            while True:
                line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
                if not line or line[0] != "run":
                    return
                result = await segment(float(line[1]), float(line[2]))
                print(json.dumps(result), flush=True)

    asyncio.run(serve())


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"baseline runner {proc.pid} said nothing for {timeout:.0f} s")
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError(f"baseline runner {proc.pid} exited with {proc.wait()}")
    return line


# ------------------------------------------------------------------------------ accounting


@dataclass
class Tally:
    """One variant's windows, summed over rounds."""

    runs: int = 0
    not_completed: int = 0
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    per_round: list[float] = field(default_factory=list)

    def add(self, runs: int, not_completed: int, split: CpuSplit) -> None:
        self.runs += runs
        self.not_completed += not_completed
        self.wall += split.wall
        self.machine_busy += split.machine_busy
        for name, seconds in split.seconds.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds
        self.per_round.append(runs / split.wall)

    @property
    def rate(self) -> float:
        return self.runs / self.wall if self.wall else 0.0


class Socialflow:
    """Feeds the API and counts the worker's completions."""

    def __init__(self, args: argparse.Namespace, url: str, api: str, flow_id: Any, secret: str):
        from socialflow.core.db import Database

        self.args = args
        self.db = Database(url, pool_size=2)
        self.hook = f"{api}/hooks/{flow_id}"
        self.secret = secret
        self.posted = 0
        self.rejected = 0

    async def backlog(self) -> tuple[int, int]:
        """(pending events + queued executions, running executions)"""
        from sqlalchemy import func, select

        from socialflow.orchestration import FlowExecution, WebhookEvent

        async with self.db.sessionmaker() as session:
            pending = await session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.status == "pending")
            )
            rows = await session.execute(
                select(FlowExecution.status, func.count())
                .where(FlowExecution.status.in_(("queued", "running")))
                .group_by(FlowExecution.status)
            )
            by_status = {str(status): int(n) for status, n in rows}
        return int(pending or 0) + by_status.get("queued", 0), by_status.get("running", 0)

    async def feed(self, client: Any, stop: asyncio.Event) -> None:
        import httpx

        while not stop.is_set():
            waiting, _ = await self.backlog()
            missing = self.args.backlog - waiting
            for start in range(0, max(0, missing), 8):
                answers = await asyncio.gather(
                    *(
                        client.post(
                            self.hook,
                            json={"n": self.posted + i, "text": "throughput"},
                            headers={"X-Socialflow-Secret": self.secret},
                        )
                        for i in range(min(8, missing - start))
                    ),
                    return_exceptions=True,
                )
                for answer in answers:
                    if isinstance(answer, httpx.Response) and answer.status_code == 202:
                        self.posted += 1
                    else:
                        self.rejected += 1
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except TimeoutError:
                pass

    async def finished_between(self, a: datetime, b: datetime) -> dict[str, int]:
        from sqlalchemy import func, select

        from socialflow.orchestration import FlowExecution

        async with self.db.sessionmaker() as session:
            rows = await session.execute(
                select(FlowExecution.status, func.count())
                .where(FlowExecution.finished_at >= a, FlowExecution.finished_at < b)
                .group_by(FlowExecution.status)
            )
            return {str(status): int(n) for status, n in rows}

    async def segment(
        self, groups: CpuGroups, warmup: float, duration: float
    ) -> tuple[int, int, CpuSplit, int]:
        import httpx

        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            feeder = asyncio.create_task(self.feed(client, stop))
            try:
                await asyncio.sleep(warmup)
                with sampled(groups) as split:
                    start = datetime.now(UTC)
                    await asyncio.sleep(duration)
                    end = datetime.now(UTC)
                left, _ = await self.backlog()
            finally:
                stop.set()
                await feeder
        counts = await self.finished_between(start, end)
        if left == 0:
            log("warning: the backlog ran dry in the window: raise --backlog")
        # drain, so the next baseline segment has the machine to itself
        deadline = time.monotonic() + self.args.drain_timeout
        while time.monotonic() < deadline:
            waiting, running = await self.backlog()
            if waiting == 0 and running == 0:
                break
            await asyncio.sleep(0.5)
        else:
            log("warning: the backlog did not drain in time")
        done = counts.get("completed", 0)
        return done, sum(counts.values()) - done, split[0], left


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="measured seconds per variant (60)"
    )
    parser.add_argument(
        "--window",
        choices=("continuous", "alternating"),
        default="continuous",
        help="one continuous window of steady load per variant (default), or --rounds "
        "alternating segments sharing --duration",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="segments per variant with --window alternating (3)",
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="ramp-up per window, s (5)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="runs at once per worker (8); baseline lanes = concurrency x workers",
    )
    parser.add_argument("--workers", type=int, default=1, help="socialflow worker processes (1)")
    parser.add_argument(
        "--backlog",
        type=int,
        default=0,
        help="events kept waiting (default 3 x concurrency x workers)",
    )
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="s (120)")
    parser.add_argument("--raw-prefect-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.window == "continuous":
        args.rounds = 1
    elif args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")
    lanes = args.concurrency * args.workers
    if args.raw_prefect_child:
        raw_prefect_child(args.concurrency)
        return
    args.backlog = args.backlog or 3 * lanes
    load_start = load_average()
    with Stack("throughput") as stack:
        prefect_api = stack.prefect()
        prefect_db = stack.databases[0]
        app = stack.database("app")
        env = {
            **base_env(stack.home, prefect_api_url=prefect_api),
            "SOCIALFLOW_DATABASE_URL": app.psycopg_url,
            "SOCIALFLOW_PREFECT_API_URL": prefect_api,
        }
        apply_env(env)  # before Prefect is imported in this process
        flow_id, secret = asyncio.run(prepare_app_db(app.psycopg_url, four_nodes(), deploy=True))
        asyncio.run(_ensure_pool())
        port = free_port()
        api = stack.start(api_server(stack.home / "logs", port=port, env=env))
        workers = [
            stack.start_worker(
                env, name=f"worker {i + 1}", args=["--concurrency", str(args.concurrency)]
            )
            for i in range(args.workers)
        ]
        runner = stack.spawn(
            [sys.executable, __file__, "--raw-prefect-child", "--concurrency", str(lanes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **env},
        )
        if _readline(runner, 120) != "ready":
            raise RuntimeError("baseline runner did not start")
        assert stack.prefect_process is not None
        groups = CpuGroups(
            trees={
                "prefect server": [pid_of(stack.prefect_process)],
                "worker(s)": [pid_of(w) for w in workers],
                "API": [pid_of(api)],
                "raw prefect runner": [runner.pid],
            },
            singles={"this process (feeder)": [os.getpid()]},
            postgres_dbs={"prefect db": [prefect_db.name], "app db": [app.name]},
        )
        sf = Socialflow(args, app.psycopg_url, f"http://127.0.0.1:{port}", flow_id, secret)
        tallies, notes = asyncio.run(_rounds(args, runner, groups, sf))
    notes += f"\nmachine: {os.cpu_count()} cores, shared; load average {load_start} at start, "
    notes += f"{load_average()} at end"
    _print(args, tallies, notes)


async def _rounds(
    args: argparse.Namespace, runner: subprocess.Popen[bytes], groups: CpuGroups, sf: Socialflow
) -> tuple[dict[str, Tally], str]:
    assert runner.stdin is not None
    lanes = args.concurrency * args.workers
    segment = args.duration / args.rounds
    limit = args.warmup + segment + 120
    tallies = {"baseline": Tally(), "socialflow": Tally()}
    left_over = []
    try:
        for r in range(args.rounds):
            log(
                f"round {r + 1}/{args.rounds}: raw prefect, {lanes} flow runs at once, "
                f"{args.warmup:g} s + {segment:g} s"
            )
            runner.stdin.write(f"run {args.warmup} {segment}\n".encode())
            runner.stdin.flush()
            if await asyncio.to_thread(_readline, runner, limit) != "window-start":
                raise RuntimeError("baseline runner did not start its window")
            with sampled(groups) as split:
                if await asyncio.to_thread(_readline, runner, limit) != "window-end":
                    raise RuntimeError("baseline runner did not end its window")
            raw = json.loads(await asyncio.to_thread(_readline, runner, 120))
            tallies["baseline"].add(raw["in_window"], raw["failed"], split[0])
            log(f"  raw prefect {tallies['baseline'].per_round[-1]:.2f} runs/s")
            log(
                f"round {r + 1}/{args.rounds}: socialflow, {args.workers} worker(s) x "
                f"{args.concurrency}, backlog ~{args.backlog}, {args.warmup:g} s + {segment:g} s"
            )
            done, bad, cpu, left = await sf.segment(groups, args.warmup, segment)
            tallies["socialflow"].add(done, bad, cpu)
            left_over.append(left)
            log(f"  socialflow {tallies['socialflow'].per_round[-1]:.2f} runs/s")
        runner.stdin.write(b"quit\n")
        runner.stdin.flush()
    finally:
        await sf.db.dispose()
    notes = f"posted {sf.posted}, rejected {sf.rejected}, backlog at window ends {left_over}"
    return tallies, notes


async def _ensure_pool() -> None:
    """Create the scheduled-runs work pool, as publishing any schedule does; without it every
    worker logs a failed poll every 2 s (see bench/README.md)."""
    from socialflow.orchestration import ensure_work_pool

    await ensure_work_pool()


def _print(args: argparse.Namespace, tallies: dict[str, Tally], notes: str) -> None:
    raw, sf = tallies["baseline"], tallies["socialflow"]
    lanes = args.concurrency * args.workers
    shape = (
        f"one continuous {sf.wall:.0f} s window of steady load per variant"
        if args.window == "continuous"
        else f"{sf.wall:.0f} s per variant in {args.rounds} alternating segments"
    )
    print(
        f"\nthroughput: 4-node flow (4 task runs per run); {shape}, each after "
        f"{args.warmup:g} s ramp-up; "
        f"{args.workers} worker(s) x {args.concurrency} runs vs raw Prefect with {lanes} flow "
        "runs at once; Prefect server and app database on PostgreSQL"
    )
    print_table(
        "runs completed per second",
        ["variant", "runs/s", "ratio", "runs counted", "not completed", "per segment runs/s"],
        [
            (
                "raw prefect (baseline)",
                raw.rate,
                1.0,
                raw.runs,
                raw.not_completed,
                " ".join(f"{x:.2f}" for x in raw.per_round),
            ),
            (
                "socialflow (API + worker)",
                sf.rate,
                sf.rate / raw.rate if raw.rate else float("nan"),
                sf.runs,
                sf.not_completed,
                " ".join(f"{x:.2f}" for x in sf.per_round),
            ),
        ],
    )
    print(notes)
    order = [
        "prefect server",
        "raw prefect runner",
        "worker(s)",
        "API",
        "this process (feeder)",
        "postgres: prefect db",
        "postgres: app db",
        "postgres: rest of server",
    ]
    rows = []
    for name in order:
        rows.append(
            (
                name,
                sf.cpu.get(name, 0.0) / sf.wall,
                sf.cpu.get(name, 0.0) / max(1, sf.runs) * 1000,
                raw.cpu.get(name, 0.0) / raw.wall,
                raw.cpu.get(name, 0.0) / max(1, raw.runs) * 1000,
            )
        )
    ours_sf = sum(sf.cpu.get(n, 0.0) for n in order)
    ours_raw = sum(raw.cpu.get(n, 0.0) for n in order)
    rows.append(
        (
            "other processes on the machine",
            (sf.machine_busy - ours_sf) / sf.wall,
            float("nan"),
            (raw.machine_busy - ours_raw) / raw.wall,
            float("nan"),
        )
    )
    rows.append(
        (
            "machine busy (all)",
            sf.machine_busy / sf.wall,
            sf.machine_busy / max(1, sf.runs) * 1000,
            raw.machine_busy / raw.wall,
            raw.machine_busy / max(1, raw.runs) * 1000,
        )
    )
    print_table(
        f"where the CPU goes in the windows (cores = CPU s / wall s, of {os.cpu_count()}; "
        "ms = CPU ms per completed run)",
        ["process group", "socialflow cores", "ms/run", "raw prefect cores", "ms/run"],
        rows,
    )
    print("goal (issue): socialflow >= 0.9x raw Prefect runs/s")


if __name__ == "__main__":
    main()
