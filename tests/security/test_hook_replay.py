"""A signed call to ``/hooks/{flow_id}`` cannot be replayed into a second run.

The signature covers a timestamp and the delivery's ``Idempotency-Key`` as well as the body:
replaying a captured request inside the five-minute window is a duplicate (no second run),
after it the request is refused, and neither header can be changed without the secret. The
old scheme (an HMAC of the body alone, replayable forever, each replay a new run) is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid

import httpx
from sqlalchemy import func, select

from socialflow.api.hooks import signing
from socialflow.orchestration import EngineRuntime, FlowExecution, WebhookEvent, Worker
from tests.api.conftest import Team, app, client, team  # noqa: F401 - fixtures
from tests.api.test_hooks import events_of, publish_hook


async def _executions_of(runtime: EngineRuntime, flow_id: str) -> list[str]:
    async with runtime.db.sessionmaker() as session:
        rows = await session.scalars(
            select(FlowExecution.status).where(FlowExecution.flow_id == uuid.UUID(flow_id))
        )
        return list(rows)


async def _pending_events(runtime: EngineRuntime, flow_id: str) -> int:
    async with runtime.db.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.flow_id == uuid.UUID(flow_id), WebhookEvent.status == "pending")
            )
            or 0
        )


async def test_a_replayed_signed_request_does_not_start_a_second_run(
    client: httpx.AsyncClient,  # noqa: F811 - the fixture imported above
    team: Team,  # noqa: F811
    runtime: EngineRuntime,
) -> None:
    flow_id, info = await publish_hook(client, team, auth="hmac_sha256")
    url, secret = f"/hooks/{flow_id}", info["secret"]
    body = json.dumps({"n": 2}).encode()
    captured = {"content-type": "application/json", **signing.sign(secret, body)}

    first = await client.post(url, content=body, headers=captured)
    assert first.status_code == 202, first.text
    assert first.json()["duplicate"] is False
    # the attacker's replay, byte for byte
    replay = await client.post(url, content=body, headers=captured)
    assert replay.status_code == 202, replay.text
    assert replay.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    # ... or with a new Idempotency-Key or timestamp, which the signature no longer covers
    for header, value in (
        (signing.IDEMPOTENCY_HEADER, str(uuid.uuid4())),
        (signing.TIMESTAMP_HEADER, str(int(time.time()) + 1)),
    ):
        forged = await client.post(url, content=body, headers={**captured, header: value})
        assert forged.status_code == 401, forged.text
        assert forged.json()["code"] == "webhook_unauthorized"
    assert await events_of(runtime, flow_id) == 1

    worker = Worker(runtime, concurrency=2, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while await _executions_of(runtime, flow_id) != ["completed"] or await _pending_events(
            runtime, flow_id
        ):
            assert asyncio.get_running_loop().time() < deadline, await _executions_of(
                runtime, flow_id
            )
            await asyncio.sleep(0.2)
        # replayed again once the run is over: still the one run
        late = await client.post(url, content=body, headers=captured)
        assert late.status_code == 202 and late.json()["duplicate"] is True
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await task
    assert await _executions_of(runtime, flow_id) == ["completed"]


async def test_a_request_signed_outside_the_window_is_refused(
    client: httpx.AsyncClient,  # noqa: F811 - the fixture imported above
    team: Team,  # noqa: F811
    runtime: EngineRuntime,
) -> None:
    """A request captured six minutes ago (its key possibly pruned from the inbox since) and a
    timestamp from the future beyond the skew allowance are refused; nothing is stored."""
    flow_id, info = await publish_hook(client, team, auth="hmac_sha256")
    body = b'{"n": 4}'
    now = int(time.time())
    for stamp in (now - 360, now + 360):
        headers = {
            "content-type": "application/json",
            **signing.sign(info["secret"], body, timestamp=stamp),
        }
        answer = await client.post(f"/hooks/{flow_id}", content=body, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "webhook_timestamp_expired"
        assert "300 s" in answer.json()["message"]
    # within the allowance either way: accepted
    for stamp in (now - 240, now + 240):
        headers = {
            "content-type": "application/json",
            **signing.sign(info["secret"], body, timestamp=stamp),
        }
        answer = await client.post(f"/hooks/{flow_id}", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
    assert await events_of(runtime, flow_id) == 2


async def test_the_body_only_signature_is_refused_and_says_how_to_sign(
    client: httpx.AsyncClient,  # noqa: F811 - the fixture imported above
    team: Team,  # noqa: F811
    runtime: EngineRuntime,
) -> None:
    """The scheme before signed timestamps: an HMAC of the body alone, which a replay (with
    any Idempotency-Key, or none) passed again and again."""
    flow_id, info = await publish_hook(client, team, auth="hmac_sha256")
    body = b'{"n": 6}'
    digest = hmac.new(info["secret"].encode(), body, hashlib.sha256).hexdigest()
    answer = await client.post(
        f"/hooks/{flow_id}",
        content=body,
        headers={"content-type": "application/json", "X-Socialflow-Signature": f"sha256={digest}"},
    )
    assert answer.status_code == 401, answer.text
    problem = answer.json()
    assert problem["code"] == "webhook_unauthorized"
    assert problem["details"]["missing"] == [signing.TIMESTAMP_HEADER, signing.IDEMPOTENCY_HEADER]
    assert "{timestamp}.{key}.{body}" in problem["message"]
    # a key that could blur where the signed text splits is refused, not guessed at
    dotted = {
        "content-type": "application/json",
        **signing.sign(info["secret"], body, key="order.42"),
    }
    refused = await client.post(f"/hooks/{flow_id}", content=body, headers=dotted)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_idempotency_key"
    assert await events_of(runtime, flow_id) == 0
