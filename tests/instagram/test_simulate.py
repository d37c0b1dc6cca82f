"""``socialflow simulate``: realistic payloads, signed like Meta's, posted to a running API."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from socialflow.api.app import create_app
from socialflow.core.db import Database
from socialflow.core.settings import Settings
from socialflow.instagram import (
    DEMO_ACCOUNT_ID,
    build_comment,
    build_dm,
    build_mention,
    build_payload,
    encode_body,
    parse_body,
    signed_headers,
    verify_signature,
    webhook_secrets,
)
from socialflow.orchestration import WebhookEvent
from tests.api.conftest import api_settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "simulated-app-secret"


def test_payloads_parse_into_the_events_they_simulate() -> None:
    [c] = parse_body(encode_body(build_comment("How much?", media_id="m1", from_username="ana")))
    assert c.event.model_dump()["text"] == "How much?"
    assert c.event.model_dump()["media_id"] == "m1"
    assert c.event.model_dump()["from_username"] == "ana"
    assert c.event.account_id == DEMO_ACCOUNT_ID and not c.event.is_self
    assert c.event.occurred_at is not None
    assert abs(c.event.occurred_at.timestamp() - time.time()) < 120
    [d] = parse_body(encode_body(build_dm("hello", account_id="42", quick_reply_payload="YES")))
    dumped = d.event.model_dump()
    assert d.event.kind == "dm" and d.event.account_id == "42"
    assert dumped["text"] == "hello" and dumped["quick_reply_payload"] == "YES"
    assert dumped["message_id"].startswith("aWdf")
    [m] = parse_body(encode_body(build_mention("hi @shop", media_id="m2")))
    assert m.event.kind == "mention" and m.event.model_dump()["media_id"] == "m2"
    [r] = parse_body(encode_body(build_comment("reply", parent_id="p1", live=True)))
    assert r.event.kind == "live_comment" and r.event.model_dump()["parent_id"] == "p1"


def test_each_simulated_event_is_new() -> None:
    keys = {parse_body(encode_body(build_payload("comment", "same")))[0].dedupe_key for _ in "ab"}
    assert len(keys) == 2


def test_signed_headers_verify_like_meta_s() -> None:
    body = encode_body(build_dm("Grüße 👋"))
    assert b"\\u00fc" in body and b"\\ud83d\\udc4b" in body  # escaped like Meta's bodies
    headers = signed_headers(body, SECRET)
    assert verify_signature(body, headers, [SECRET.encode()])
    no256 = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    assert verify_signature(body, no256, [SECRET.encode()], allow_sha1=True)


@pytest.fixture
async def live_api(db: Database, test_registry: Any) -> AsyncIterator[tuple[str, Settings]]:
    """The API served by uvicorn on loopback, in development mode with a known secret key."""
    settings = api_settings(db.url, environment="development", secret_key="s" * 40)
    app = create_app(settings, db=db, registry=test_registry)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", settings
    server.should_exit = True
    await serving
    sock.close()


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "socialflow.cli",
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_simulate_posts_a_signed_comment_to_the_running_api(
    live_api: tuple[str, Settings], db: Database
) -> None:
    url, settings = live_api
    # no secret configured: both sides derive the development secret from the same secret key
    assert not settings.instagram.app_secrets and webhook_secrets(settings)
    env = {"SOCIALFLOW_ENVIRONMENT": "development", "SOCIALFLOW_SECRET_KEY": "s" * 40}
    account = f"178414{uuid.uuid4().int % 10**11:011d}"
    code, out, err = await cli(
        "simulate",
        "comment",
        "What's the price? äö",
        "--url",
        url,
        "--account",
        account,
        "--media",
        "media-7",
        "--from-username",
        "ana.b",
        env=env,
    )
    assert code == 0, out + err
    assert f"POST {url}/webhooks/instagram -> 200" in out
    assert json.loads(out.splitlines()[1]) == {"received": 1, "stored": 1, "duplicates": 0}
    async with db.sessionmaker() as session:
        [row] = (
            await session.scalars(select(WebhookEvent).where(WebhookEvent.account_id == account))
        ).all()
    assert row.kind == "instagram.comment"
    assert row.payload["text"] == "What's the price? äö"
    assert row.payload["media_id"] == "media-7" and row.payload["from_username"] == "ana.b"

    # a DM to the per-flow endpoint of an unknown flow: signed fine, but no such flow
    code, out, _ = await cli(
        "simulate", "dm", "hi", "--url", url, "--flow", str(uuid.uuid4()), env=env
    )
    assert code == 1 and "-> 404" in out

    # signed with another secret: the API refuses it, and the command says so
    code, out, _ = await cli(
        "simulate", "mention", "hi", "--url", url, env={**env, "SOCIALFLOW_SECRET_KEY": "t" * 40}
    )
    assert code == 1 and "-> 401" in out and "webhook_signature_invalid" in out


async def test_simulate_explains_bad_usage() -> None:
    code, _, err = await cli("simulate", "story", "x", env={})
    assert code == 2 and "comment, dm or mention" in err
    code, _, err = await cli("simulate", "dm", env={})
    assert code == 2 and "needs the text" in err
    # outside development, no configured secret means nothing to sign with
    code, _, err = await cli("simulate", "dm", "x", env={"SOCIALFLOW_ENVIRONMENT": "test"})
    assert code == 2 and "SOCIALFLOW_INSTAGRAM_APP_SECRETS" in err
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{port.getsockname()[1]}"
    port.close()
    env = {"SOCIALFLOW_INSTAGRAM_APP_SECRETS": json.dumps([SECRET])}
    code, _, err = await cli("simulate", "dm", "x", "--url", closed, env=env)
    assert code == 1 and "cannot reach" in err
