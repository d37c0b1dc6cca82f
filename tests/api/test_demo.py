"""The demo `socialflow up` seeds: a simulated price question runs the demo flow, and its reply
lands in the send ledger as sandboxed (never sent)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.api.demo import DEMO_EMAIL, seed_demo
from socialflow.instagram import (
    DEMO_ACCOUNT_ID,
    OutboxMessage,
    build_comment,
    encode_body,
    signed_headers,
    webhook_secrets,
)
from socialflow.orchestration import EngineRuntime, FlowExecution, Worker
from tests.api.conftest import api_settings
from tests.orchestration.test_worker import wait_for


async def test_a_simulated_price_question_runs_the_demo_flow_in_sandbox(
    runtime: EngineRuntime,
) -> None:
    settings = api_settings(runtime.db.url, environment="development")
    runtime.settings = settings
    demo = await seed_demo(settings, runtime.db, runtime.registry)
    again = await seed_demo(settings, runtime.db, runtime.registry)
    assert (again.workspace_id, again.flow_id, again.created, again.password) == (
        demo.workspace_id,
        demo.flow_id,
        False,
        None,  # the password generated at creation is left alone
    )
    # generated when the user was created, and passes the password rules
    password = demo.password
    assert password is not None and len(password) >= 16

    app = create_app(settings, db=runtime.db, registry=runtime.registry, email=LogEmailSender())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        login = await client.post(
            "/api/auth/login", data={"username": DEMO_EMAIL, "password": password}
        )
        assert login.status_code in (200, 204), login.text
        secret = webhook_secrets(settings)[0]
        answers = []
        for text in ("How much is the blue one?", "Lovely photo"):
            body = encode_body(build_comment(text, account_id=DEMO_ACCOUNT_ID))
            answers.append(
                await client.post(
                    "/webhooks/instagram",
                    content=body,
                    headers={**signed_headers(body, secret), "Content-Type": "application/json"},
                )
            )
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]

    worker = Worker(runtime, concurrency=2, poll_interval=0.05, relay=False)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    async def one_run_done() -> bool:
        async with runtime.db.sessionmaker() as session:
            rows = (
                await session.scalars(
                    select(FlowExecution).where(FlowExecution.flow_id == demo.flow_id)
                )
            ).all()
        return bool(rows) and all(r.status in ("completed", "failed") for r in rows)

    try:
        await wait_for(one_run_done, timeout=120)
        await asyncio.sleep(0.5)  # a second run, if any, would be queued by now
    finally:
        stop.set()
        await task
    async with runtime.db.sessionmaker() as session:
        runs = (
            await session.scalars(
                select(FlowExecution).where(FlowExecution.flow_id == demo.flow_id)
            )
        ).all()
        ledger = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.flow_id == demo.flow_id)
            )
        ).all()
    # only the price question matched the trigger's keywords
    assert [r.status for r in runs] == ["completed"]
    assert [(m.action, m.status) for m in ledger] == [("reply_comment", "sandboxed")]
    assert "Our prices are in the link in our bio" in str(ledger[0].payload)
