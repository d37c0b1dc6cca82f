"""A broadcast to 10,000 contacts, enumerated in keyset pages and paced under the account's
limit, without loading the contacts into memory.

The contacts (90 % inside Meta's 24-hour window, 10 % outside it) are written to a fresh
SQLite database; the Graph API emulator runs in this process on 127.0.0.1. The sender runs in
a child process of its own, twice: once loading nothing (the baseline: the same imports,
database and gateway, no send), once sending the broadcast. Figures:

* peak RSS of each child (``VmHWM`` from /proc/self/status) and the difference: what holding
  the broadcast's recipients costs beyond the process itself;
* sends/s against the pacing limit (``send_limit`` per ``send_window_seconds``), and the most
  sends the emulator saw in any window of that length (must not pass the limit);
* sends the emulator received against the eligible contacts (must be equal; no duplicates).

Run it under the shared lock: ``flock /tmp/socialflow-bench.lock uv run python bench/broadcast.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any


def _settings(db_url: str, graph_url: str, limit: int, window: float) -> Any:
    from socialflow.core.settings import Settings

    return Settings(
        database={"url": db_url},
        # parent and child open the account's token with the same development key
        secret_key="socialflow-bench-broadcast-not-a-real-secret-0123456789",
        http={"allowed_hosts": []},
        instagram={
            "graph_instagram_url": graph_url,
            "graph_facebook_url": graph_url,
            "send_limit": limit,
            "send_window_seconds": window,
        },
    )


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def _child(args: argparse.Namespace) -> None:
    """One sender process: ``--baseline`` builds everything and sends nothing."""
    # every table, as a worker has them (a credential's workspace id is typed through them)
    import socialflow.api.models  # noqa: F401
    from socialflow.broadcasts import BroadcastContext, Sender
    from socialflow.core.credentials import key_wrapper
    from socialflow.core.db import Database

    settings = _settings(args.db_url, args.graph_url, args.limit, args.window)
    db = Database(args.db_url)
    context = BroadcastContext(settings=settings, db=db, keys=key_wrapper(settings))
    sender = Sender(context)
    started = time.monotonic()
    status = "baseline"
    if not args.baseline:
        status = await sender.send(uuid.UUID(args.broadcast_id))
    elapsed = time.monotonic() - started
    await db.dispose()
    print(json.dumps({"status": status, "elapsed": elapsed, "peak_rss_kib": _peak_rss_kib()}))


async def _seed(db_url: str, emulator: Any, contacts: int, token: str) -> tuple[str, int]:
    """The account, the contacts (bulk inserts) and a draft broadcast; its id and how many
    contacts are eligible."""
    from sqlalchemy import insert

    from socialflow.api.workspaces.models import Workspace
    from socialflow.broadcasts import BroadcastFields, Segment, broadcasts
    from socialflow.contacts import Contact, contact_id
    from socialflow.core.credentials import Credential, InstagramSecret, seal_credential
    from socialflow.core.credentials import key_wrapper as keys_of
    from socialflow.core.db import Database, utcnow
    from socialflow.instagram import InstagramAccount
    from socialflow.migrations import upgrade

    await upgrade(db_url)
    db = Database(db_url)
    ig = "17841499000000001"
    emulator.state.add_account(ig, "shop", token)
    settings = _settings(db_url, emulator.url, 100, 1.0)
    workspace_id = uuid.uuid4()
    async with db.sessionmaker() as session:
        session.add(Workspace(id=workspace_id, name="Bench"))
        await session.flush()
        credential = Credential(workspace_id=workspace_id, name="ig", kind="instagram")
        seal_credential(credential, InstagramSecret(access_token=token), keys_of(settings))
        session.add(credential)
        await session.flush()
        account = InstagramAccount(
            workspace_id=workspace_id,
            ig_user_id=ig,
            username="shop",
            login_kind="instagram",
            credential_id=credential.id,
            mode="live",
        )
        session.add(account)
        await session.commit()
        account_id = account.id
    now = utcnow()
    eligible = 0
    batch: list[dict[str, Any]] = []
    for n in range(contacts):
        igsid = f"77{n:014d}"
        inside = n % 10 != 0
        age = timedelta(hours=1) if inside else timedelta(days=10)
        if inside:
            eligible += 1
            emulator.state.add_message(ig, igsid, age_seconds=3600)
        batch.append(
            {
                "id": contact_id(workspace_id, ig, igsid),
                "workspace_id": workspace_id,
                "account_id": ig,
                "igsid": igsid,
                "source": "dm",
                "first_seen_at": now - age,
                "last_seen_at": now - age,
                "last_inbound_at": now - age,
                "opted_out": False,
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(batch) == 1000:
            async with db.sessionmaker() as session:
                await session.execute(insert(Contact), batch)
                await session.commit()
            batch = []
    if batch:
        async with db.sessionmaker() as session:
            await session.execute(insert(Contact), batch)
            await session.commit()
    fields = BroadcastFields(account_id=account_id, name="Bench", text="Sale!", segment=Segment())
    async with db.sessionmaker() as session:
        row = await broadcasts.create(session, workspace_id, fields, user_id=None)
    await db.dispose()
    return str(row.id), eligible


def _run_child(base: list[str], *extra: str) -> dict[str, Any]:
    done = subprocess.run([*base, *extra], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        msg = f"the sender process failed ({done.returncode})"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=100, help="sends per window (Meta: 100/s)")
    parser.add_argument("--window", type=float, default=1.0, help="pacing window, seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--graph-url", help=argparse.SUPPRESS)
    parser.add_argument("--broadcast-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args))
        return

    from socialflow.testing.graph_api_emulator import GraphEmulator

    emulator = GraphEmulator().start()
    try:
        with tempfile.TemporaryDirectory(prefix="socialflow-bench-broadcast-") as tmp:
            db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'app.db'}"
            print(f"seeding {args.contacts} contacts...", file=sys.stderr)
            broadcast_id, eligible = asyncio.run(
                _seed(db_url, emulator, args.contacts, "IGQ-bench-token")
            )
            base = [
                sys.executable,
                __file__,
                "--child",
                f"--db-url={db_url}",
                f"--graph-url={emulator.url}",
                f"--broadcast-id={broadcast_id}",
                f"--limit={args.limit}",
                f"--window={args.window}",
            ]
            print("baseline process...", file=sys.stderr)
            baseline = _run_child(base, "--baseline")
            print("sending...", file=sys.stderr)
            sent = _run_child(base)
            times = sorted(
                c["at"]
                for c in emulator.state.calls
                if c["method"] == "POST" and str(c["path"]).endswith("/messages")
            )
            recipients = [
                str(c["body"]["recipient"]["id"])
                for c in emulator.state.calls
                if c["method"] == "POST" and str(c["path"]).endswith("/messages")
            ]
    finally:
        emulator.stop()
    rate = len(times) / sent["elapsed"] if sent["elapsed"] else 0.0
    pace = args.limit / args.window
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| contacts in the segment | {args.contacts:,} |")
    print(f"| eligible (inside 24 h) | {eligible:,} |")
    print(f"| sends received by the emulator | {len(times):,} |")
    print(f"| duplicate sends | {len(recipients) - len(set(recipients))} |")
    print(f"| broadcast status | {sent['status']} |")
    print(f"| peak RSS, baseline process (no send) | {baseline['peak_rss_kib'] / 1024:.1f} MiB |")
    print(f"| peak RSS, sender process | {sent['peak_rss_kib'] / 1024:.1f} MiB |")
    delta = (sent["peak_rss_kib"] - baseline["peak_rss_kib"]) / 1024
    print(f"| peak RSS over the baseline | {delta:+.1f} MiB |")
    print(f"| send time | {sent['elapsed']:.1f} s |")
    print(f"| sends/s | {rate:.1f} (pacing limit {pace:.0f}/s, {rate / pace:.0%} of it) |")
    print(f"| most sends in any {args.window:g} s window | {_max_in_window(times, args.window)} |")


if __name__ == "__main__":
    main()
