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

Prefect server presets (``--presets``, comma-separated; measured in the same alternating run,
each on a Prefect server, app database, API and worker(s) of its own, the idle ones waiting):
``defaults`` (Prefect's own settings), ``tuned`` (socialflow/stack.py PREFECT_SERVER_TUNING,
what Socialflow starts its Prefect server with: automations' triggers off, no event stream to
websocket subscribers, task run states recorded 50 to a statement), ``tuned-no-events``
(tuned, and Prefect's events not persisted). The raw Prefect baseline runs against the first
preset's server. The tables give runs/s and CPU ms per run for each process group, per preset,
with ratios against the first preset. ``--prefect-pool-size`` sets Prefect's database pool for
every preset. Every run also checks, from each Prefect database, that every execution's flow run
and every node's task run was recorded there.

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

from socialflow.stack import api_server, prefect_server_tuning

PRESETS: dict[str, dict[str, str]] = {
    "defaults": {},
    "tuned": prefect_server_tuning(),
    "tuned-no-events": prefect_server_tuning(events=False),
}

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
    parser.add_argument(
        "--presets",
        default="tuned",
        help=f"Prefect server presets, comma-separated, the first the baseline: "
        f"{', '.join(PRESETS)} (tuned: what Socialflow starts)",
    )
    parser.add_argument(
        "--prefect-pool-size",
        type=int,
        default=0,
        help="PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE for every preset (Prefect's: 5)",
    )
    parser.add_argument(
        "--pool-size", type=int, default=5, help="SOCIALFLOW_DATABASE_POOL_SIZE per process (5)"
    )
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
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown or not presets or len(set(presets)) != len(presets):
        parser.error(f"--presets {args.presets!r}: name each of {', '.join(PRESETS)} at most once")
    load_start = load_average()
    with Stack("throughput") as stack:
        variants = [
            _start_preset(stack, args, name, first=i == 0) for i, name in enumerate(presets)
        ]
        first = variants[0]
        runner = stack.spawn(
            [sys.executable, __file__, "--raw-prefect-child", "--concurrency", str(lanes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **first.env},
        )
        if _readline(runner, 120) != "ready":
            raise RuntimeError("baseline runner did not start")
        first.groups.trees["raw prefect runner"] = [runner.pid]
        tallies, notes = asyncio.run(_rounds(args, runner, variants))
        recorded = asyncio.run(_recorded(variants))
    notes += f"\nmachine: {os.cpu_count()} cores, shared; load average {load_start} at start, "
    notes += f"{load_average()} at end"
    _print(args, presets, tallies, notes, recorded)


@dataclass
class Variant:
    """One preset's stack: its Prefect server, app database, API and workers."""

    preset: str
    env: dict[str, str]
    app_url: str
    prefect_dsn: str
    groups: CpuGroups
    sf: Socialflow


def _start_preset(stack: Stack, args: argparse.Namespace, preset: str, *, first: bool) -> Variant:
    tuning = dict(PRESETS[preset])
    if args.prefect_pool_size:
        tuning["PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"] = str(args.prefect_pool_size)
    prefect_api = stack.prefect(tuning, name=preset)
    server = stack.prefect_process
    prefect_db = stack.databases[-1]
    app = stack.database(f"app {preset}")
    env = {
        **base_env(stack.home, prefect_api_url=prefect_api),
        "SOCIALFLOW_DATABASE_URL": app.psycopg_url,
        "SOCIALFLOW_PREFECT_API_URL": prefect_api,
        # several presets' processes share this machine's PostgreSQL (max_connections)
        "SOCIALFLOW_DATABASE_POOL_SIZE": str(args.pool_size),
    }
    if first:
        apply_env(env)  # the first preset's, before Prefect settings are read in this process
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        flow_id, secret = asyncio.run(prepare_app_db(app.psycopg_url, four_nodes(), deploy=True))
        asyncio.run(_ensure_pool())
    port = free_port()
    api = stack.start(api_server(stack.home / "logs" / preset, port=port, env=env))
    workers = [
        stack.start_worker(
            env, name=f"worker {preset} {i + 1}", args=["--concurrency", str(args.concurrency)]
        )
        for i in range(args.workers)
    ]
    assert server is not None
    groups = CpuGroups(
        trees={
            "prefect server": [pid_of(server)],
            "worker(s)": [pid_of(w) for w in workers],
            "API": [pid_of(api)],
        },
        singles={"this process (feeder)": [os.getpid()]},
        postgres_dbs={"prefect db": [prefect_db.name], "app db": [app.name]},
    )
    sf = Socialflow(args, app.psycopg_url, f"http://127.0.0.1:{port}", flow_id, secret)
    return Variant(preset, env, app.psycopg_url, prefect_db.dsn, groups, sf)


async def _recorded(variants: list[Variant]) -> dict[str, dict[str, Any]]:
    """Per preset: the executions' flow runs and the nodes' task runs found in Prefect."""
    from _prefect_tier import prefect_recorded
    from sqlalchemy import select

    from socialflow.core.db import Database
    from socialflow.orchestration import FlowExecution, NodeRun

    out = {}
    for variant in variants:
        db = Database(variant.app_url, pool_size=1)
        try:
            async with db.sessionmaker() as session:
                flows = (
                    await session.scalars(
                        select(FlowExecution.prefect_flow_run_id).where(
                            FlowExecution.status == "completed"
                        )
                    )
                ).all()
                tasks = (
                    await session.scalars(
                        select(NodeRun.prefect_task_run_id)
                        .join(FlowExecution, NodeRun.execution_id == FlowExecution.id)
                        .where(FlowExecution.status == "completed")
                    )
                ).all()
        finally:
            await db.dispose()
        found = await prefect_recorded(
            variant.prefect_dsn,
            {str(f) for f in flows if f},
            {str(t) for t in tasks if t},
            timeout=60,
        )
        out[variant.preset] = {
            "executions": len(flows),
            "node_runs": len(tasks),
            "without_prefect_id": sum(1 for f in [*flows, *tasks] if f is None),
            **found,
        }
    return out


async def _rounds(
    args: argparse.Namespace, runner: subprocess.Popen[bytes], variants: list[Variant]
) -> tuple[dict[str, Tally], str]:
    assert runner.stdin is not None
    lanes = args.concurrency * args.workers
    segment = args.duration / args.rounds
    limit = args.warmup + segment + 120
    tallies = {"baseline": Tally(), **{v.preset: Tally() for v in variants}}
    left_over: dict[str, list[int]] = {v.preset: [] for v in variants}
    try:
        for r in range(args.rounds):
            log(
                f"round {r + 1}/{args.rounds}: raw prefect ({variants[0].preset} server), "
                f"{lanes} flow runs at once, {args.warmup:g} s + {segment:g} s"
            )
            runner.stdin.write(f"run {args.warmup} {segment}\n".encode())
            runner.stdin.flush()
            if await asyncio.to_thread(_readline, runner, limit) != "window-start":
                raise RuntimeError("baseline runner did not start its window")
            with sampled(variants[0].groups) as split:
                if await asyncio.to_thread(_readline, runner, limit) != "window-end":
                    raise RuntimeError("baseline runner did not end its window")
            raw = json.loads(await asyncio.to_thread(_readline, runner, 120))
            tallies["baseline"].add(raw["in_window"], raw["failed"], split[0])
            log(f"  raw prefect {tallies['baseline'].per_round[-1]:.2f} runs/s")
            for variant in variants:
                log(
                    f"round {r + 1}/{args.rounds}: socialflow ({variant.preset}), "
                    f"{args.workers} worker(s) x {args.concurrency}, backlog ~{args.backlog}, "
                    f"{args.warmup:g} s + {segment:g} s"
                )
                done, bad, cpu, left = await variant.sf.segment(
                    variant.groups, args.warmup, segment
                )
                tallies[variant.preset].add(done, bad, cpu)
                left_over[variant.preset].append(left)
                rate = tallies[variant.preset].per_round[-1]
                log(f"  socialflow ({variant.preset}) {rate:.2f} runs/s")
        runner.stdin.write(b"quit\n")
        runner.stdin.flush()
    finally:
        for variant in variants:
            await variant.sf.db.dispose()
    notes = "; ".join(
        f"{v.preset}: posted {v.sf.posted}, rejected {v.sf.rejected}, backlog at window ends "
        f"{left_over[v.preset]}"
        for v in variants
    )
    return tallies, notes


async def _ensure_pool() -> None:
    """Create the scheduled-runs work pool, as publishing any schedule does; without it every
    worker logs a failed poll every 2 s (see bench/README.md)."""
    from socialflow.orchestration import ensure_work_pool

    await ensure_work_pool()


ORDER = [
    "prefect server",
    "raw prefect runner",
    "worker(s)",
    "API",
    "this process (feeder)",
    "postgres: prefect db",
    "postgres: app db",
    "postgres: rest of server",
]


def _print(
    args: argparse.Namespace,
    presets: list[str],
    tallies: dict[str, Tally],
    notes: str,
    recorded: dict[str, dict[str, Any]],
) -> None:
    raw = tallies["baseline"]
    lanes = args.concurrency * args.workers
    sf0 = tallies[presets[0]]
    shape = (
        f"one continuous {sf0.wall:.0f} s window of steady load per variant"
        if args.window == "continuous"
        else f"{sf0.wall:.0f} s per variant in {args.rounds} alternating segments"
    )
    print(
        f"\nthroughput: 4-node flow (4 task runs per run); {shape}, each after "
        f"{args.warmup:g} s ramp-up; "
        f"{args.workers} worker(s) x {args.concurrency} runs vs raw Prefect with {lanes} flow "
        f"runs at once; Prefect server and app database on PostgreSQL; Prefect server presets "
        f"{', '.join(presets)}"
    )
    rows = [
        (
            f"raw prefect ({presets[0]} server)",
            raw.rate,
            1.0,
            float("nan"),
            raw.runs,
            raw.not_completed,
            " ".join(f"{x:.2f}" for x in raw.per_round),
        )
    ]
    for preset in presets:
        sf = tallies[preset]
        rows.append(
            (
                f"socialflow ({preset})",
                sf.rate,
                sf.rate / raw.rate if raw.rate else float("nan"),
                sf.rate / sf0.rate if sf0.rate else float("nan"),
                sf.runs,
                sf.not_completed,
                " ".join(f"{x:.2f}" for x in sf.per_round),
            )
        )
    print_table(
        "runs completed per second",
        [
            "variant",
            "runs/s",
            "vs raw",
            f"vs {presets[0]}",
            "runs counted",
            "not completed",
            "per segment runs/s",
        ],
        rows,
    )
    print(notes)
    variants = [("raw", raw), *((p, tallies[p]) for p in presets)]
    header = ["process group"]
    for name, _ in variants:
        header += [f"{name} cores", "ms/run"]
    cpu_rows = []
    for group in ORDER:
        row: list[Any] = [group]
        for _, tally in variants:
            seconds = tally.cpu.get(group, 0.0)
            row += [seconds / tally.wall, seconds / max(1, tally.runs) * 1000]
        cpu_rows.append(row)
    others: list[Any] = ["other processes on the machine"]
    busy: list[Any] = ["machine busy (all)"]
    for _, tally in variants:
        ours = sum(tally.cpu.get(n, 0.0) for n in ORDER)
        others += [(tally.machine_busy - ours) / tally.wall, float("nan")]
        busy += [tally.machine_busy / tally.wall, tally.machine_busy / max(1, tally.runs) * 1000]
    cpu_rows += [others, busy]
    print_table(
        f"where the CPU goes in the windows (cores = CPU s / wall s, of {os.cpu_count()}; "
        "ms = CPU ms per completed run; raw prefect runs against the "
        f"{presets[0]} server)",
        header,
        cpu_rows,
    )
    if len(presets) > 1:
        ratio_rows = []
        for group in ["prefect server", "worker(s)", "API", "postgres: prefect db"]:
            base = sf0.cpu.get(group, 0.0) / max(1, sf0.runs)
            ratio_rows.append(
                (
                    group,
                    *(
                        (tallies[p].cpu.get(group, 0.0) / max(1, tallies[p].runs)) / base
                        if base
                        else float("nan")
                        for p in presets[1:]
                    ),
                )
            )
        print_table(
            f"CPU per run against {presets[0]} (same run, alternating windows)",
            ["process group", *presets[1:]],
            ratio_rows,
        )
    print_table(
        "recorded in Prefect (completed executions' flow runs, their nodes' task runs)",
        ["preset", "executions", "flow runs", "flow run states", "task runs", "task run states"],
        [
            (
                preset,
                r["executions"],
                r["flow_runs"],
                json.dumps(r["flow_run_states"]),
                f"{r['task_runs']} of {r['node_runs']}",
                json.dumps(r["task_run_states"]),
            )
            for preset, r in recorded.items()
        ],
    )
    print("goal (issue): socialflow >= 0.9x raw Prefect runs/s")


if __name__ == "__main__":
    main()
