"""Webhook ingest: signed POST /hooks/{flow_id} requests per second that the API accepts
(202) and stores in the inbox, with p50/p99 latency, against a bare baseline.

Variants (``--variants``, each ``kind:processes``):
  bare:N      baseline: bench/_bare_app.py (a FastAPI route of the same shape that answers 202
              without storing), served by uvicorn exactly like the API;
  sqlite:N    the API (socialflow.api.app:create_app under uvicorn, as `socialflow up` runs it)
              on a fresh SQLite file;
  postgres:N  the same on a fresh PostgreSQL database (socialflow_bench_<random>, dropped at
              the end).
N API processes are N uvicorn processes on N ports with the load spread round-robin
(``--multi ports``), or one uvicorn with ``--workers N`` (``--multi workers``).

Each variant gets a published webhook flow (tests/fixtures/flows.py FOUR_NODES). No worker
runs: events stay pending. Requests are signed: ``X-Socialflow-Signature: sha256=<HMAC-SHA256 of
"{timestamp}.{key}.{body}">`` with a timestamp and a new delivery key per request, computed by
the client and checked by the API (``--auth hmac``, the
default); ``--auth header`` sends the trigger's shared secret in ``X-Socialflow-Secret``
instead. The bare baseline checks the shared-secret header in either mode, so its clients send
that header. Load: ``--clients`` processes (bench/_load.py) with
httpx.AsyncClient, ``--concurrency`` requests in flight in all, ``--warmup`` requests first,
then ``--requests`` measured (closed loop). Then, unless ``--paced-rate 0``, a paced phase at a
fixed rate, latency measured from each request's scheduled time. At the end the stored
webhook_event rows must equal the accepted (202) count.

CPU seconds of the API processes, the load clients and PostgreSQL are read from /proc around
each measured phase: on this 2-core machine the client competes with the server, so the bare
baseline shows the ceiling of the setup itself.

Goal (issue): >= 2,000 events/s accepted and p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import select
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    BENCH,
    CpuGroups,
    Stack,
    apply_env,
    base_env,
    count_events,
    four_nodes,
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


@dataclass
class Phase:
    """What one load phase measured, summed over the client processes."""

    accepted: int = 0
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    non_202: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    warmup_accepted: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0

    @property
    def rate(self) -> float:
        return self.accepted / self.wall if self.wall else 0.0


@dataclass
class Result:
    name: str
    kind: str
    procs: int
    closed: Phase
    paced: Phase | None
    stored: int | None
    expected: int


def _argv(kind: str, port: int, workers: int, access_log: bool, log_dir: Path) -> list[str]:
    argv = list(api_server(log_dir, port=port).argv)
    if kind == "bare":
        i = argv.index("socialflow.api.app:create_app")
        argv[i : i + 2] = ["--app-dir", str(BENCH), "_bare_app:app"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    if not access_log:
        argv.append("--no-access-log")
    return argv


def _start_servers(
    stack: Stack, kind: str, procs: int, multi: str, env: dict[str, str], access_log: bool
) -> tuple[list[str], list[int]]:
    urls, pids = [], []
    layout = (
        [(free_port(), 1) for _ in range(procs)] if multi == "ports" else [(free_port(), procs)]
    )
    for i, (port, workers) in enumerate(layout):
        log_dir = stack.home / "logs"
        process = ManagedProcess(
            name=f"{kind} api {i + 1}",
            argv=_argv(kind, port, workers, access_log, log_dir),
            log_path=log_dir / f"api-{i + 1}.log",
            health_url=f"http://127.0.0.1:{port}/healthz",
            env=env,
        )
        stack.start(process, timeout=120)
        urls.append(f"http://127.0.0.1:{port}")
        pids.append(pid_of(process))
    return urls, pids


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"load client {proc.pid} did not answer within {timeout:.0f} s")
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError(f"load client {proc.pid} exited with {proc.wait()}")
    return line


def _run_phase(
    stack: Stack,
    args: argparse.Namespace,
    targets: list[str],
    secret: str,
    groups: CpuGroups,
    *,
    auth: str,
    requests: int,
    warmup: int,
    rate: float,
    offset: int,
) -> Phase:
    clients = []
    per_client = requests // args.clients
    for k in range(args.clients):
        # each client starts on a different server, so the round-robin interleaves
        urls = targets[k % len(targets) :] + targets[: k % len(targets)]
        argv = [
            sys.executable,
            str(BENCH / "_load.py"),
            "--urls",
            ",".join(urls),
            # one argument: a secret may start with "-", which argparse reads as an option
            f"--secret={secret}",
            "--auth",
            auth,
            "--tag",
            f"c{k}",
            "--offset",
            str(offset + k * 1_000_000),
            "--warmup",
            str(warmup // args.clients),
            "--requests",
            str(per_client),
            "--concurrency",
            str(max(1, args.concurrency // args.clients)),
            "--rate",
            str(rate / args.clients),
            "--deadline",
            str(args.deadline),
        ]
        clients.append(stack.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    for proc in clients:
        if _readline(proc, args.deadline + 60) != "ready":
            raise RuntimeError("load client did not warm up")
    groups.trees["load clients"] = [p.pid for p in clients]
    outputs = []
    with sampled(groups) as split:
        for proc in clients:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        for proc in clients:
            outputs.append(json.loads(_readline(proc, args.deadline + 60)))
    for proc in clients:
        proc.wait(30)
    phase = Phase()
    for out in outputs:
        phase.accepted += out["status"].get("202", 0)
        phase.latencies += out["latencies_ms"]
        phase.duplicates += out["duplicates"]
        phase.warmup_accepted += out["warmup_accepted"]
        for code, n in {**out["status"], **out["errors"]}.items():
            if code != "202":
                phase.non_202[code] = phase.non_202.get(code, 0) + n
    phase.wall = max(o["end"] for o in outputs) - min(o["start"] for o in outputs)
    phase.cpu = split[0].seconds
    phase.machine_busy = split[0].machine_busy
    return phase


def _variant(args: argparse.Namespace, kind: str, procs: int) -> Result:
    name = f"{kind}:{procs}"
    with Stack(f"ingest-{kind}") as stack:
        env = base_env(stack.home)
        groups = CpuGroups()
        flow_id = uuid.uuid4()
        url: str | None = None
        if kind == "bare":
            secret = uuid.uuid4().hex
            env["BENCH_BARE_SECRET"] = secret
        else:
            if kind == "sqlite":
                url = f"sqlite+aiosqlite:///{stack.home / 'socialflow.db'}"
            else:
                db = stack.database("app")
                url = db.psycopg_url
                groups.postgres_dbs["app database"] = [db.name]
            env["SOCIALFLOW_DATABASE_URL"] = url
            flow_id, secret = asyncio.run(prepare_app_db(url, four_nodes(args.auth)))
        # the bare app checks the shared-secret header only
        auth = "header" if kind == "bare" else args.auth
        log(f"{name}: starting {procs} API process(es) ({args.multi}), auth {auth}")
        bases, pids = _start_servers(stack, kind, procs, args.multi, env, args.access_log)
        groups.trees["API processes"] = pids
        targets = [f"{b}/hooks/{flow_id}" for b in bases]
        log(
            f"{name}: {args.warmup} warm-up + {args.requests} requests, "
            f"{args.concurrency} in flight"
        )
        closed = _run_phase(
            stack,
            args,
            targets,
            secret,
            groups,
            auth=auth,
            requests=args.requests,
            warmup=args.warmup,
            rate=0.0,
            offset=0,
        )
        log(f"{name}: {closed.rate:.0f}/s, p99 {percentile(closed.latencies, 99):.1f} ms")
        paced = None
        if args.paced_rate > 0 and args.paced_requests > 0:
            log(f"{name}: paced {args.paced_requests} requests at {args.paced_rate:g}/s")
            paced = _run_phase(
                stack,
                args,
                targets,
                secret,
                groups,
                auth=auth,
                requests=args.paced_requests,
                warmup=min(100, args.warmup),
                rate=args.paced_rate,
                offset=10_000_000,
            )
        expected = closed.accepted + closed.warmup_accepted - closed.duplicates
        if paced is not None:
            expected += paced.accepted + paced.warmup_accepted - paced.duplicates
        stored = asyncio.run(count_events(url, flow_id)) if url else None
        return Result(name, kind, procs, closed, paced, stored, expected)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--variants",
        default="bare:1,sqlite:1,bare:2,postgres:2",
        help="comma-separated kind:processes, kind in bare|sqlite|postgres "
        "(default bare:1,sqlite:1,bare:2,postgres:2)",
    )
    parser.add_argument("--requests", type=int, default=5000, help="measured requests (5000)")
    parser.add_argument("--warmup", type=int, default=500, help="warm-up requests (500)")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight, all clients (64)")
    parser.add_argument("--clients", type=int, default=1, help="load client processes (1)")
    parser.add_argument(
        "--multi",
        choices=("ports", "workers"),
        default="ports",
        help="N API processes: N uvicorns on N ports, round-robin (default), "
        "or one uvicorn --workers N",
    )
    parser.add_argument(
        "--auth",
        choices=("header", "hmac"),
        default="hmac",
        help="HMAC-SHA256 signature of each body (default) or the X-Socialflow-Secret "
        "shared-secret header; the bare baseline always gets the header",
    )
    parser.add_argument(
        "--paced-rate", type=float, default=200.0, help="paced phase, requests/s (200; 0: skip)"
    )
    parser.add_argument("--paced-requests", type=int, default=1000, help="paced requests (1000)")
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="uvicorn's access log, as `socialflow up` runs it (default on; same for baseline)",
    )
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per phase (120)")
    args = parser.parse_args()
    if args.auth == "hmac" and "bare" in args.variants:
        log("note: the bare baseline checks the X-Socialflow-Secret header, not a signature")
    # Prefect and Socialflow read their settings on import: keep them off ~/.prefect and .env
    load_start = load_average()
    with Stack("ingest") as top:
        apply_env(base_env(top.home))
        results = []
        for spec in args.variants.split(","):
            kind, _, procs = spec.strip().partition(":")
            if kind not in ("bare", "sqlite", "postgres"):
                parser.error(f"unknown variant kind {kind!r}")
            results.append(_variant(args, kind, int(procs or 1)))
    _print(results, args, f"load average {load_start} at start, {load_average()} at end")


def _print(results: list[Result], args: argparse.Namespace, load: str) -> None:
    bare = {r.procs: r.closed.rate for r in results if r.kind == "bare"}
    print(
        f"\ningest: {args.requests} signed webhook POSTs after {args.warmup} warm-up, "
        f"{args.concurrency} in flight from {args.clients} httpx client processes; "
        f"auth: {_AUTH[args.auth]} (bare baseline: shared-secret header) "
        f"({args.multi}; access log {'on' if args.access_log else 'off'})"
    )
    print("ratio = accepted/s / bare baseline with the same number of API processes, same run")
    print_table(
        "closed loop",
        [
            "variant",
            "accepted/s",
            "ratio",
            "p50 ms",
            "p99 ms",
            "max ms",
            "non-202",
            "stored rows",
            "API CPU ms/req",
        ],
        [
            (
                r.name,
                r.closed.rate,
                r.closed.rate / bare[r.procs] if r.procs in bare else float("nan"),
                percentile(r.closed.latencies, 50),
                percentile(r.closed.latencies, 99),
                max(r.closed.latencies, default=float("nan")),
                sum(r.closed.non_202.values()),
                "-"
                if r.stored is None
                else f"{r.stored}/{r.expected}"
                + (" ok" if r.stored == r.expected else " MISMATCH"),
                r.closed.cpu.get("API processes", 0.0) / max(1, r.closed.accepted) * 1000,
            )
            for r in results
        ],
    )
    print_table(
        "closed loop: CPU cores busy during the measured phase (CPU seconds / wall seconds)",
        [
            "variant",
            "wall s",
            "API",
            "load clients",
            "postgres app db",
            "postgres other",
            "machine busy",
            "of cores",
        ],
        [
            (
                r.name,
                r.closed.wall,
                r.closed.cpu.get("API processes", 0.0) / r.closed.wall,
                r.closed.cpu.get("load clients", 0.0) / r.closed.wall,
                r.closed.cpu.get("postgres: app database", 0.0) / r.closed.wall,
                r.closed.cpu.get("postgres: rest of server", 0.0) / r.closed.wall,
                r.closed.machine_busy / r.closed.wall,
                _cores(),
            )
            for r in results
        ],
    )
    paced = [r for r in results if r.paced is not None]
    if paced:
        print_table(
            f"paced at {args.paced_rate:g}/s ({args.paced_requests} requests): latency from "
            "each request's scheduled send time",
            ["variant", "achieved/s", "p50 ms", "p99 ms", "max ms", "non-202"],
            [
                (
                    r.name,
                    r.paced.rate,
                    percentile(r.paced.latencies, 50),
                    percentile(r.paced.latencies, 99),
                    max(r.paced.latencies, default=float("nan")),
                    sum(r.paced.non_202.values()),
                )
                for r in paced
                if r.paced is not None
            ],
        )
    for r in results:
        bad = {**r.closed.non_202, **(r.paced.non_202 if r.paced else {})}
        if bad:
            print(f"{r.name}: non-202 answers or client errors: {bad}")
    print(f"machine: {_cores()} cores, shared; {load}")
    print("goal (issue): >= 2,000 accepted/s and p99 <= 50 ms")


_AUTH = {
    "hmac": "X-Socialflow-Signature HMAC-SHA256 of each timestamp, key and body",
    "header": "X-Socialflow-Secret shared-secret header",
}


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
