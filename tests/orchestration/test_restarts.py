"""Restarting the API process and PostgreSQL in the middle of a load loses and repeats nothing.

Real processes on a PostgreSQL server of the test's own: an API (uvicorn) and a worker, fed
signed webhook POSTs by senders that retry until they get 202, as Meta and other webhook
senders do. Mid-way the API is killed with SIGKILL and started again on the same port; later
PostgreSQL itself is restarted (every connection of both processes is cut). Every accepted
event must end with exactly one completed run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from socialflow.core.db import Database
from socialflow.core.settings import Settings
from socialflow.migrations import upgrade
from socialflow.orchestration import FlowExecution, FlowTrigger, WebhookEvent, open_trigger_secret
from socialflow.stack import ManagedProcess, api_server
from tests.fixtures.flows import publish
from tests.fixtures.ports import free_port
from tests.fixtures.postgres_cluster import PostgresCluster, find_pg_bin
from tests.orchestration.test_worker_crash import start_worker

EVENTS = 240
SENDERS = 12

pytestmark = [
    pytest.mark.skipif(find_pg_bin() is None, reason="needs PostgreSQL's server binaries"),
    # a PostgreSQL cluster of its own, Prefect's server for the runs, minutes of load
    pytest.mark.postgres,
    pytest.mark.prefect,
    pytest.mark.slow,
]


class Load:
    """Senders that post every event until it is accepted, counting what happened."""

    def __init__(self, base_url: str, flow_id: uuid.UUID, secret: str) -> None:
        self.url = f"{base_url}/hooks/{flow_id}"
        self.secret = secret
        self.accepted: dict[int, str] = {}
        self.retries = 0
        self.statuses: dict[int, int] = {}

    async def send(self, client: httpx.AsyncClient, n: int) -> None:
        while True:
            try:
                response = await client.post(
                    self.url,
                    json={"n": n},
                    headers={"X-Socialflow-Secret": self.secret, "Idempotency-Key": f"ev-{n}"},
                )
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code == 202:
                    self.accepted[n] = response.json()["event_id"]
                    return
                assert response.status_code in (500, 502, 503), response.text
            except httpx.TransportError:
                pass  # the API is down: try again, as a webhook sender would
            self.retries += 1
            await asyncio.sleep(0.3)

    async def run(self) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(EVENTS):
            queue.put_nowait(n)

        async def sender() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                while not queue.empty():
                    await self.send(client, queue.get_nowait())
                    await asyncio.sleep(0.05)  # a steady stream rather than one burst

        await asyncio.gather(*(sender() for _ in range(SENDERS)))


async def _count(db: Database, *where: object) -> int:
    for _ in range(60):  # the server may be restarting
        try:
            async with db.sessionmaker() as session:
                return int(
                    await session.scalar(
                        select(func.count()).select_from(FlowExecution).where(*where)  # type: ignore[arg-type]
                    )
                    or 0
                )
        except Exception:
            await asyncio.sleep(0.5)
    raise AssertionError("the database did not come back")


async def _wait_accepted(load: Load, count: int, api: ManagedProcess) -> None:
    while len(load.accepted) < count:
        assert api.process is not None and api.process.poll() is None, api.log_tail()
        await asyncio.sleep(0.1)


@pytest.mark.timeout(1200)
async def test_api_and_postgres_restarts_mid_load_lose_nothing(
    test_registry: object, tmp_path: Path
) -> None:
    cluster = await asyncio.to_thread(PostgresCluster.create)
    api: ManagedProcess | None = None
    worker = None
    db = Database(cluster.url)
    try:
        await upgrade(cluster.url)
        settings = Settings(database={"url": cluster.url})
        flow_id, version_id = await publish(db, test_registry, settings)  # type: ignore[arg-type]
        async with db.sessionmaker() as session:
            trigger = await session.get(FlowTrigger, flow_id)
            assert trigger is not None
            secret = open_trigger_secret(trigger, settings)
        port = free_port()
        env = {"SOCIALFLOW_DATABASE_URL": cluster.url}
        api = api_server(tmp_path / "api-1", port=port, env=env)
        api.start()
        await asyncio.to_thread(api.wait_healthy, 120)
        worker = start_worker(cluster.url, tmp_path / "worker.log")
        while "ready" not in (tmp_path / "worker.log").read_text():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        load = Load(f"http://127.0.0.1:{port}", flow_id, secret)
        sending = asyncio.create_task(load.run())

        # 1. kill the API mid-load and start another on the same port
        await _wait_accepted(load, EVENTS // 4, api)
        assert api.process is not None
        os.killpg(api.process.pid, signal.SIGKILL)
        api.process.wait()
        killed_at = len(load.accepted)
        api = api_server(tmp_path / "api-2", port=port, env=env)
        api.start()
        await asyncio.to_thread(api.wait_healthy, 120)

        # 2. restart PostgreSQL under both processes
        await _wait_accepted(load, EVENTS // 2, api)
        restarted_at = len(load.accepted)
        await asyncio.to_thread(cluster.restart, 2.0)

        await asyncio.wait_for(sending, 600)
        assert len(load.accepted) == EVENTS
        assert killed_at < EVENTS and restarted_at < EVENTS
        assert load.retries > 0, "no request failed: neither restart happened under load"

        deadline = asyncio.get_running_loop().time() + 600
        while await _count(db, FlowExecution.status == "completed") < EVENTS:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline, "runs did not all complete"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # anything run twice would show up now

        async with db.sessionmaker() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.flow_id == flow_id)
            )
            per_event = (
                await session.execute(
                    select(FlowExecution.trigger_event_id, func.count())
                    .where(FlowExecution.flow_version_id == version_id)
                    .group_by(FlowExecution.trigger_event_id)
                )
            ).all()
            statuses = dict(
                (
                    await session.execute(
                        select(FlowExecution.status, func.count()).group_by(FlowExecution.status)
                    )
                )
                .tuples()
                .all()
            )
        assert stored == EVENTS  # one event per idempotency key, whatever the retries
        assert len(per_event) == EVENTS
        assert all(n == 1 for _, n in per_event)
        assert statuses == {"completed": EVENTS}
        accepted_ids = {uuid.UUID(v) for v in load.accepted.values()}
        assert accepted_ids == {event_id for event_id, _ in per_event}
        print(f"restarts: answers {load.statuses}, retries {load.retries}")  # noqa: T201
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(worker.wait, 30)
            except Exception:
                worker.kill()
        if api is not None:
            api.stop()
        await db.dispose()
        await asyncio.to_thread(cluster.destroy)
