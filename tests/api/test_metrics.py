"""``/metrics``: the series exist and move after a webhook is posted and run through a worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from socialflow.instagram import TokenInvalidError
from socialflow.instagram.client import GraphClient
from socialflow.orchestration import EngineRuntime, FlowExecution, Worker, store_events
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.api.conftest import Team
from tests.api.test_hooks import publish_hook
from tests.fixtures.flows import publish
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    TOKEN,
    emulator_settings,
    graph_emulator,
)
from tests.fixtures.ports import free_port
from tests.orchestration.test_dispatch import hook_event

ROOT = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= set(lbls))


async def test_series_move_after_a_webhook_runs_through_a_worker(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    before = await scrape(client)
    for name in ("socialflow_queue_depth", "socialflow_ledger_queue_depth"):
        assert (name, ()) in before
    assert ("socialflow_dispatch_lag_seconds", ()) in before

    flow_id, info = await publish_hook(client, team)
    headers = {"X-Socialflow-Secret": info["secret"], "Idempotency-Key": "metrics-1"}
    for _ in range(2):  # the second is a duplicate
        answer = await client.post(f"/hooks/{flow_id}", json={"n": 2}, headers=headers)
        assert answer.status_code == 202
    pending = await scrape(client)
    received = "socialflow_events_received_total"
    deduplicated = "socialflow_events_deduplicated_total"
    hooks = {"source": "webhook"}
    assert total(pending, received, **hooks) == total(before, received, **hooks) + 2
    assert total(pending, deduplicated, **hooks) == total(before, deduplicated, **hooks) + 1
    assert pending[("socialflow_dispatch_lag_seconds", ())] >= 0

    worker = Worker(runtime, concurrency=2, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while not await _completed(runtime, flow_id):
            assert asyncio.get_running_loop().time() < deadline, "the run did not complete"
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    after = await scrape(client)
    runs = "socialflow_runs"
    # the database is shared with other tests: the worker may also finish runs they left queued,
    # and their undispatchable events may still be pending
    assert total(after, runs, status="completed") >= total(pending, runs, status="completed") + 1
    assert after[("socialflow_dispatch_lag_seconds", ())] >= 0.0
    assert after[("socialflow_queue_depth", ())] == total(after, runs, status="queued")
    count = "socialflow_node_duration_seconds_count"
    # the worker ran in this process: its node runs are in this process's histogram
    assert total(after, count, status="completed") >= total(before, count, status="completed") + 3


async def _completed(runtime: EngineRuntime, flow_id: str) -> bool:
    async with runtime.db.sessionmaker() as session:
        done = await session.scalar(
            select(func.count())
            .select_from(FlowExecution)
            .where(
                FlowExecution.flow_id == uuid.UUID(flow_id),
                FlowExecution.status == "completed",
            )
        )
    return bool(done)


async def test_graph_api_calls_and_errors_are_counted(
    client: httpx.AsyncClient,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    before = await scrape(client)
    comment = graph_emulator.state.add_comment({"text": "hi", "account": ACCOUNT})["id"]
    graph = GraphClient(TOKEN, emulator_settings(graph_emulator), ig_user_id=ACCOUNT)
    try:
        await graph.get_comment(comment)
    finally:
        await graph.aclose()
    stranger = GraphClient("not-a-token", emulator_settings(graph_emulator))
    try:
        with pytest.raises(TokenInvalidError):  # Meta's code 190
            await stranger.me()
    finally:
        await stranger.aclose()
    after = await scrape(client)
    calls = "socialflow_graph_api_calls_total"
    errors = "socialflow_graph_api_errors_total"
    assert total(after, calls, method="GET") == total(before, calls, method="GET") + 2
    assert total(after, errors) == total(before, errors) + 1
    new_codes = {
        dict(lbls)["code"]
        for (n, lbls), v in after.items()
        if n == errors and v > before.get((n, lbls), 0)
    }
    assert new_codes == {"190"}


async def test_a_worker_serves_its_node_durations_on_its_metrics_port(
    runtime: EngineRuntime, tmp_path: Path
) -> None:
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings)
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, 4)])
    port = free_port()
    log = tmp_path / "worker.log"
    env = {**os.environ, "SOCIALFLOW_DATABASE_URL": runtime.db.url}
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "socialflow.cli", "worker", "--metrics-port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while not await _version_completed(runtime, version_id):
            assert worker.poll() is None, log.read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.3)
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    counts = [
        s for s in families["socialflow_node_duration_seconds"].samples if s.name.endswith("_count")
    ]
    assert sum(s.value for s in counts if s.labels["status"] == "completed") >= 3


async def _version_completed(runtime: EngineRuntime, version_id: uuid.UUID) -> bool:
    async with runtime.db.sessionmaker() as session:
        done = await session.scalar(
            select(func.count())
            .select_from(FlowExecution)
            .where(FlowExecution.flow_version_id == version_id, FlowExecution.status == "completed")
        )
    return bool(done)
