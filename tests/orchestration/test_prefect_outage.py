"""Prefect's API failing under a worker (503s, reset connections, requests left unanswered)
slows the worker down but never stalls it: once the API answers again, every queued run
completes within a few lease periods, each exactly once, in our rows and in Prefect.

A real worker process talks to the session's real Prefect server through ``FaultProxy`` on
loopback; the test switches the proxy between faults mid-load, then heals it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from socialflow.orchestration import EngineRuntime, FlowExecution
from socialflow.orchestration._dispatch import Dispatcher
from socialflow.orchestration._inbox import store_events
from tests.fixtures.fault_proxy import FaultProxy, Mode
from tests.fixtures.flows import publish
from tests.orchestration.test_dispatch import hook_event
from tests.orchestration.test_worker import prefect_runs_of, state_of
from tests.orchestration.test_worker_crash import completed, unfinished

ROOT = Path(__file__).resolve().parents[2]
RUNS = 48
LEASE = 3.0
#: after the API is healed, every run must be done within this many lease periods
HEALED_WITHIN_LEASES = 20
FAULTS: tuple[tuple[Mode, float], ...] = (("503", 12.0), ("reset", 3.0), ("stall", 4.0))


def _start_worker(database_url: str, prefect_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SOCIALFLOW_DATABASE_URL": database_url,
        "SOCIALFLOW_DATABASE_POOL_SIZE": "5",
        "PREFECT_API_URL": prefect_url,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socialflow.cli",
                "worker",
                "--lease-seconds",
                str(LEASE),
                "--concurrency",
                "8",
                "--poll-interval",
                "0.1",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.timeout(600)
async def test_worker_recovers_from_a_failing_prefect_api(
    pg_runtime: EngineRuntime, tmp_path: Path
) -> None:
    runtime = pg_runtime
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings)
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, n) for n in range(RUNS)])
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    api = urlsplit(os.environ["PREFECT_API_URL"])
    proxy = FaultProxy(api.hostname or "127.0.0.1", api.port or 80)
    await proxy.start()
    log = tmp_path / "worker.log"
    worker = _start_worker(runtime.db.url, f"http://127.0.0.1:{proxy.port}/api", log)
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + 180
        while await completed(runtime, version_id) < 4:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert loop.time() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.1)
        before = await completed(runtime, version_id)
        for mode, seconds in FAULTS:
            proxy.set_mode(mode)
            await asyncio.sleep(seconds)
        proxy.set_mode("pass")
        healed_at = loop.time()
        at_heal = await completed(runtime, version_id)
        assert at_heal < RUNS, "the faults must hit runs still queued for this test to mean much"

        deadline = healed_at + HEALED_WITHIN_LEASES * LEASE
        while (done := await completed(runtime, version_id)) < RUNS:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert loop.time() < deadline, (
                f"{done} of {RUNS} runs done {HEALED_WITHIN_LEASES} leases after Prefect's API "
                f"came back ({at_heal} at that moment, {before} before the faults): "
                f"slots stayed held without progress\n{log.read_text()[-4000:]}"
            )
            await asyncio.sleep(0.2)
        took = loop.time() - healed_at
        # the flow runs the faults left unfinished are settled by the worker (reconcile)
        deadline = loop.time() + 120
        while unfinished(await prefect_runs_of(flow_id)):
            assert worker.poll() is None, log.read_text()[-3000:]
            assert loop.time() < deadline, (
                f"flow runs left unfinished: {unfinished(await prefect_runs_of(flow_id))}"
            )
            await asyncio.sleep(1.0)
    finally:
        proxy.set_mode("pass")
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(worker.wait, 60)
            except subprocess.TimeoutExpired:
                worker.kill()
        await proxy.stop()
    print(  # noqa: T201
        f"prefect outage: {before} done before, {at_heal} at heal, all {RUNS} done "
        f"{took:.1f} s ({took / LEASE:.1f} leases) after heal; proxy {dict(proxy.connections)}"
    )
    assert proxy.connections["503"] and proxy.connections["reset"] and proxy.connections["stall"]

    async with runtime.db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    FlowExecution.id,
                    FlowExecution.trigger_event_id,
                    FlowExecution.status,
                    FlowExecution.prefect_flow_run_id,
                ).where(FlowExecution.flow_version_id == version_id)
            )
        ).all()
    assert len(rows) == RUNS
    assert len({row.trigger_event_id for row in rows}) == RUNS
    assert {row.status for row in rows} == {"completed"}
    # Prefect agrees: one Completed flow run per execution, the one on its row; attempts the
    # faults interrupted ended Crashed, and nothing is left unfinished
    runs = await prefect_runs_of(flow_id)
    assert set(runs) == {row.id for row in rows}
    for row in rows:
        states = sorted(state_of(run) for run in runs[row.id])
        assert states.count("COMPLETED") == 1, (row.id, states)
        assert set(states) <= {"COMPLETED", "CRASHED"}, (row.id, states)
        (done_run,) = [run for run in runs[row.id] if state_of(run) == "COMPLETED"]
        assert done_run.id == row.prefect_flow_run_id

    text = log.read_text()
    assert "Prefect's API failed" in text, text[-3000:]


@pytest.mark.prefect
async def test_the_workers_shared_prefect_clients_wait_no_longer_than_the_engine_allows() -> None:
    """The worker shares one client of each kind among its runs; a client reads its request
    timeout when it is built, so they must be built under the engine's bound (Prefect's own
    default, 60 s, is what held slots after the API came back)."""
    from prefect.client.orchestration import get_client

    from socialflow.core.settings import EngineSettings
    from socialflow.orchestration._worker import prefect_clients

    engine = EngineSettings(prefect_request_timeout_seconds=7.0, prefect_client_retries=0)
    async with prefect_clients(engine):
        for client in (get_client(), get_client(sync_client=True)):
            timeout = client._client.timeout
            assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (7.0,) * 4
        assert get_client() is get_client()  # the shared one, not a fresh client per call
