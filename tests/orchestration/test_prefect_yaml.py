"""Every deployment of prefect.yaml registers with Prefect and its runs complete on a worker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.exceptions import ObjectNotFound
from prefect.utilities.callables import parameter_schema

from socialflow.core.db import Database
from socialflow.core.settings import Settings, get_settings
from socialflow.knowledge import DocumentStatus, IngestContext, chunk_prefix, set_ingest_context
from socialflow.migrations import upgrade
from socialflow.orchestration import EngineRuntime, Worker, set_runtime
from socialflow.orchestration._worker import _static_runs
from socialflow.orchestration._worker._static_runs import STATIC_POOLS
from socialflow.orchestration._worker._static_runs import load_entrypoint as _load_entrypoint
from tests.fixtures.documents import make_pdf
from tests.knowledge._helpers import HashEmbeddings, add_document, fetch, make_base

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS: list[dict[str, Any]] = yaml.safe_load((ROOT / "prefect.yaml").read_text())[
    "deployments"
]

#: parameters a run of each deployment gets here, chosen so that it completes with nothing to do
RUN_PARAMETERS: dict[str, dict[str, Any]] = {
    # an unknown document: the flow returns a ``failed`` outcome naming it, the run completes
    "knowledge-ingest": {"document_id": str(uuid.UUID(int=0))},
}


def _schedule(spec: dict[str, Any]) -> DeploymentScheduleCreate:
    if "cron" in spec:
        schedule: Any = CronSchedule(cron=spec["cron"], timezone=spec.get("timezone", "UTC"))
    else:
        schedule = IntervalSchedule(interval=timedelta(seconds=spec["interval"]))
    # registered but inactive: the shared test server must not start runs on its own
    return DeploymentScheduleCreate(schedule=schedule, active=False)


def test_every_deployment_runs_in_a_pool_workers_serve() -> None:
    assert {d["name"] for d in DEPLOYMENTS} >= {
        "refresh-instagram-tokens",
        "knowledge-ingest",
        "prune-history",
        "redispatch-stuck",
    }
    for deployment in DEPLOYMENTS:
        assert deployment["work_pool"]["name"] in STATIC_POOLS, deployment["name"]
        assert isinstance(_load_entrypoint(deployment["entrypoint"]), Flow), deployment["name"]


@pytest.fixture
async def sqlite_runtime(sqlite_url: str, test_registry: Any) -> AsyncIterator[EngineRuntime]:
    """A runtime on SQLite only: registration does not depend on the database, and the
    maintenance flows' work is tested on both in tests/orchestration/test_maintenance.py."""
    await upgrade(sqlite_url)
    db = Database(sqlite_url)
    runtime = EngineRuntime(
        settings=Settings(database={"url": sqlite_url}), db=db, registry=test_registry
    )
    set_runtime(runtime)
    yield runtime
    set_runtime(None)
    await runtime.aclose()


@pytest.fixture
def app_settings(sqlite_runtime: EngineRuntime, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Flows that read settings from the environment see the test database."""
    runtime = sqlite_runtime
    monkeypatch.setenv("SOCIALFLOW_DATABASE_URL", runtime.db.url)
    get_settings.cache_clear()
    set_ingest_context(IngestContext(settings=runtime.settings, db=runtime.db))
    yield
    set_ingest_context(None)
    get_settings.cache_clear()


@pytest.fixture
async def own_pools(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, str]]:
    """This test's copies of the static pools, served by its worker alone.

    Test processes share one Prefect server and every worker serves the static pools, so runs
    created in the real pools could be taken by another process's worker (with its database).
    """
    suffix = uuid.uuid4().hex[:8]
    pools = {name: f"{name}-{suffix}" for name in STATIC_POOLS}
    monkeypatch.setattr(_static_runs, "STATIC_POOLS", tuple(pools.values()))
    yield pools
    async with get_client() as client:
        for pool in pools.values():
            with contextlib.suppress(ObjectNotFound):
                await client.delete_work_pool(pool)


async def _deploy(client: Any, spec: dict[str, Any], pool: str) -> uuid.UUID:
    """Register one deployment of prefect.yaml in ``pool`` (created if missing)."""
    flow = _load_entrypoint(spec["entrypoint"])
    assert isinstance(flow, Flow)
    try:
        await client.read_work_pool(pool)
    except ObjectNotFound:
        await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    deployment_id: uuid.UUID = await client.create_deployment(
        flow_id=await client.create_flow(flow),
        name=spec["name"],
        description=spec.get("description"),
        entrypoint=spec["entrypoint"],
        work_pool_name=pool,
        work_queue_name=spec["work_pool"].get("work_queue_name"),
        parameters=spec.get("parameters") or {},
        parameter_openapi_schema=parameter_schema(flow).model_dump_for_openapi(),
        tags=spec.get("tags") or [],
        schedules=[_schedule(s) for s in spec.get("schedules") or []],
        paused=False,
    )
    return deployment_id


async def _run_worker(runtime: EngineRuntime, run_ids: dict[str, uuid.UUID]) -> dict[str, str]:
    worker = Worker(runtime, concurrency=2, poll_interval=0.05, schedule_poll=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        return await _final_states(run_ids, timeout=120)
    finally:
        stop.set()
        await task


@pytest.mark.prefect
async def test_each_deployment_registers_and_its_run_completes(
    sqlite_runtime: EngineRuntime, app_settings: Any, own_pools: dict[str, str]
) -> None:
    runtime = sqlite_runtime
    run_ids: dict[str, uuid.UUID] = {}
    async with get_client() as client:
        for spec in DEPLOYMENTS:
            pool = own_pools[spec["work_pool"]["name"]]
            deployment_id = await _deploy(client, spec, pool)
            registered = await client.read_deployment(deployment_id)
            assert registered.entrypoint == spec["entrypoint"]
            assert registered.work_pool_name == pool
            assert len(registered.schedules) == len(spec.get("schedules") or [])
            run = await client.create_flow_run_from_deployment(
                deployment_id, parameters=RUN_PARAMETERS.get(spec["name"], {})
            )
            run_ids[spec["name"]] = run.id

    states = await _run_worker(runtime, run_ids)
    assert states == dict.fromkeys(run_ids, "COMPLETED"), states


@pytest.mark.prefect
async def test_the_knowledge_ingest_deployment_ingests_a_pending_document(
    sqlite_runtime: EngineRuntime, own_pools: dict[str, str], tmp_path: Path
) -> None:
    runtime = sqlite_runtime
    settings = Settings(
        data_dir=tmp_path,
        database={"url": runtime.db.url},
        knowledge={"chunk_size": 200, "chunk_overlap": 20},
    )
    context = IngestContext(
        settings=settings, db=runtime.db, embeddings=lambda _b: HashEmbeddings()
    )
    set_ingest_context(context)
    try:
        base = await make_base(context)
        lines = [f"Refund rule {n}: money comes back within {n + 10} days." for n in range(12)]
        doc = await add_document(context, base, "policy.pdf", make_pdf(lines))
        (spec,) = [d for d in DEPLOYMENTS if d["name"] == "knowledge-ingest"]
        async with get_client() as client:
            deployment_id = await _deploy(client, spec, own_pools[spec["work_pool"]["name"]])
            run = await client.create_flow_run_from_deployment(
                deployment_id, parameters={"document_id": str(doc.id)}
            )
        assert run.parameters == {"document_id": str(doc.id)}

        states = await _run_worker(runtime, {"knowledge-ingest": run.id})

        assert states == {"knowledge-ingest": "COMPLETED"}, states
        row = await fetch(context, doc)
        assert row is not None and row.status == DocumentStatus.READY, row and row.error
        assert row.chunks_total == row.chunks_done > 1
        store = await context.store(base)
        assert store.count(chunk_prefix(doc.sha256)) == row.chunks_total
        hits = store.hybrid_search("how many days for refund rule 7", k=1)
        assert hits[0][0].metadata["document_id"] == str(doc.id)
    finally:
        set_ingest_context(None)


async def _final_states(run_ids: dict[str, uuid.UUID], *, timeout: float) -> dict[str, str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with get_client() as client:
        while True:
            states: dict[str, str] = {}
            for name, run_id in run_ids.items():
                run = await client.read_flow_run(run_id)
                state = run.state
                states[name] = state.type.value if state else "NONE"
                if state is not None and state.type.value in ("FAILED", "CRASHED"):
                    states[name] += f": {state.message}"
            final = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
            if all(s.startswith(final) for s in states.values()):
                return states
            if loop.time() > deadline:
                return states
            await asyncio.sleep(0.3)
