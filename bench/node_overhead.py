"""Per-node overhead of Socialflow's runner against raw Prefect and plain Python.

For N in (1, 10, 50) it times, interleaved and repeated:
  - socialflow: a graph of a manual trigger and N-1 no-op nodes (N task runs), recorded in
    SQLite like every run;
  - prefect:    one async flow awaiting N no-op async tasks;
  - python:     N awaited no-op coroutines.
It prints the median wall time of a whole run, ms per node, and Socialflow / raw Prefect.

"whole run" includes creating the flow run on Prefect's server, which varies by hundreds of
milliseconds here; "in flow" times only the nodes (first node start to last node end), which
is where Socialflow adds its own work.

Uses PREFECT_API_URL when set; otherwise starts a Prefect server on a free loopback port with
its database on PostgreSQL (SOCIALFLOW_BENCH_POSTGRES_URL, default the local server), since a
SQLite-backed Prefect server stalls for seconds under lock contention.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="1,10,50", help="chain lengths (default 1,10,50)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per size and variant")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="socialflow-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(home / "client"))
    os.environ["PREFECT_LOGGING_LEVEL"] = "ERROR"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    server = None
    database = None
    if not os.environ.get("PREFECT_API_URL"):
        from socialflow.stack import prefect_server

        database = _create_database()
        port = _free_port()
        server = prefect_server(home / "server", port=port, ui=False, database_url=database[1])
        server.start()
        server.wait_healthy(180)
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    try:
        asyncio.run(_bench([int(n) for n in args.sizes.split(",")], args.repeats, home))
    finally:
        if server is not None:
            server.stop()
        if database is not None:
            _drop_database(database[0])


def _admin_dsn() -> str:
    url = os.environ.get(
        "SOCIALFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    return url.replace("postgresql+psycopg://", "postgresql://")


def _create_database() -> tuple[str, str]:
    import uuid

    import psycopg

    name = f"socialflow_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = _admin_dsn().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _bench(sizes: list[int], repeats: int, home: Path) -> None:
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.context import AsyncClientContext

    from socialflow.core.settings import Settings
    from socialflow.migrations import upgrade
    from socialflow.nodes import BaseNode, NodeConfig, NodeContext, NodeRegistry
    from socialflow.nodes.builtins import BUILTIN_NODES
    from socialflow.orchestration import (
        EngineRuntime,
        GraphSpec,
        RunMeta,
        get_execution,
        set_runtime,
        start_graph_run,
    )

    class NoopNode(BaseNode):
        """Passes its input on."""

        kind = "bench.noop"
        title = "No-op"
        category = "logic"

        class Config(NodeConfig):
            pass

        async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
            return {"out": inputs.get("in")}

    @task(cache_policy=NO_CACHE, persist_result=False)
    async def raw_noop(value: Any) -> Any:
        return value

    @flow(name="bench-raw-prefect", persist_result=False)
    async def raw_chain(n: int) -> float:
        start = time.perf_counter()
        value: Any = {"n": 0}
        for _ in range(n):
            value = await raw_noop(value)
        return (time.perf_counter() - start) * 1000

    async def plain_noop(value: Any) -> Any:
        return value

    async def plain_chain(n: int) -> Any:
        value: Any = {"n": 0}
        for _ in range(n):
            value = await plain_noop(value)
        return value

    url = f"sqlite+aiosqlite:///{home / 'bench.db'}"
    await upgrade(url)
    runtime = EngineRuntime.from_settings(
        Settings(database={"url": url}), NodeRegistry([*BUILTIN_NODES, NoopNode])
    )
    set_runtime(runtime)

    def chain(n: int) -> GraphSpec:
        nodes = [{"id": "n0", "kind": "trigger.manual", "label": "trigger"}]
        edges = []
        for i in range(1, n):
            nodes.append({"id": f"n{i}", "kind": "bench.noop", "label": f"noop {i}"})
            edges.append(
                {
                    "source": f"n{i - 1}",
                    "source_port": "event" if i == 1 else "out",
                    "target": f"n{i}",
                }
            )
        return GraphSpec.model_validate({"nodes": nodes, "edges": edges})

    async def socialflow_run(spec: GraphSpec) -> tuple[float, float]:
        meta = RunMeta(flow_name="bench-socialflow")
        start = time.perf_counter()
        state = await start_graph_run(spec, {"n": 0}, meta)
        whole = (time.perf_counter() - start) * 1000
        if not state.is_completed():
            raise RuntimeError(state.message)
        async with runtime.db.session() as session:
            execution = await get_execution(session, meta.execution_id)
        starts = [n.started_at for n in execution.node_runs if n.started_at]
        ends = [n.finished_at for n in execution.node_runs if n.finished_at]
        return whole, (max(ends) - min(starts)).total_seconds() * 1000

    async def prefect_run(n: int) -> tuple[float, float]:
        start = time.perf_counter()
        in_flow = await raw_chain(n)
        return (time.perf_counter() - start) * 1000, in_flow

    async def python_run(n: int) -> tuple[float, float]:
        start = time.perf_counter()
        await plain_chain(n)
        whole = (time.perf_counter() - start) * 1000
        return whole, whole

    # one API client for the whole process, as a long-running worker keeps it
    async with AsyncClientContext.get_or_create():
        await socialflow_run(chain(2))  # warm up: first runs register flows, import lazily
        await prefect_run(2)
        rows = []
        for n in sizes:
            spec = chain(n)
            samples: dict[str, list[tuple[float, float]]] = {"sf": [], "pf": [], "py": []}
            for _ in range(repeats):
                samples["sf"].append(await socialflow_run(spec))
                samples["pf"].append(await prefect_run(n))
                samples["py"].append(await python_run(n))
            medians = {
                f"{key}_{part}": statistics.median(s[i] for s in values)
                for key, values in samples.items()
                for i, part in enumerate(("whole", "in"))
            }
            rows.append((n, medians))
    await runtime.aclose()
    _print(rows, repeats)


def _print(rows: list[tuple[int, dict[str, float]]], repeats: int) -> None:
    print(f"\nnode overhead: median of {repeats} interleaved runs, milliseconds")
    print("ratio = Socialflow / raw Prefect; 'in flow' = first node start to last node end")
    head = (
        f"{'N':>3} | {'whole run: socialflow':>21} {'prefect':>8} {'ratio':>6} | "
        f"{'in flow per node: socialflow':>28} {'prefect':>8} {'ratio':>6} | {'python/node':>11}"
    )
    print(head)
    print("-" * len(head))
    for n, m in rows:
        print(
            f"{n:>3} | {m['sf_whole']:>21.1f} {m['pf_whole']:>8.1f} "
            f"{m['sf_whole'] / m['pf_whole']:>6.2f} | {m['sf_in'] / n:>28.2f} "
            f"{m['pf_in'] / n:>8.2f} {m['sf_in'] / m['pf_in']:>6.2f} | "
            f"{m['py_whole'] / n * 1000:>8.2f} us"
        )


if __name__ == "__main__":
    main()
