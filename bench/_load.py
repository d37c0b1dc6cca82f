"""One load-generator process of ``bench/ingest.py`` (run by it; not a benchmark itself).

Sends webhook POSTs with httpx.AsyncClient, round-robin over ``--urls``, at most
``--concurrency`` in flight. It first sends ``--warmup`` requests, prints ``ready``, waits for a
line on stdin, then sends ``--requests`` requests (closed loop, or paced at ``--rate`` per second
with latency measured from each request's scheduled time, so a slow server cannot hide its
queueing) and prints one JSON line with what it measured. Every phase is bounded by
``--deadline`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from typing import Any

import httpx

from socialflow.api.hooks import signing


def _body(tag: str, n: int, quiet_every: int = 0) -> bytes:
    """The webhook body of request ``n``. With ``quiet_every`` k > 0 the text asks the price,
    except for every k-th request (n % k == k - 1), which a flow answering price questions
    must leave unanswered."""
    text = "a comment to answer"
    if quiet_every > 0:
        text = "lovely photo" if n % quiet_every == quiet_every - 1 else "What is the PRICE?"
    return json.dumps({"n": n, "source": "bench", "tag": tag, "text": text}).encode()


class Sender:
    def __init__(self, args: argparse.Namespace) -> None:
        self.urls: list[str] = args.urls.split(",")
        self.secret: str = args.secret
        self.auth: str = args.auth
        self.tag: str = args.tag
        self.quiet_every: int = args.quiet_every
        self.accept_status: int = args.accept_status
        self.sent: dict[int, float] | None = {} if args.record_sends else None
        # one single-connection client per lane: httpx's pool costs more CPU per request the
        # more connections it holds (about 1.5 ms at 16 and 2.6 ms at 64 here), which would
        # make the load generator, not the server, the thing measured
        self.clients = [
            httpx.AsyncClient(
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                timeout=httpx.Timeout(30.0),
                trust_env=False,
            )
            for _ in range(args.concurrency)
        ]
        self.free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in self.clients:
            self.free.put_nowait(client)
        self.status: Counter[str] = Counter()
        self.duplicates = 0
        self.errors: Counter[str] = Counter()

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    async def send(self, n: int) -> bool:
        body = _body(self.tag, n, self.quiet_every)
        headers = {"content-type": "application/json"}
        if self.auth == "none":
            pass
        elif self.auth == "hmac":
            # timestamp, delivery key and body under one HMAC, as the route requires
            headers.update(signing.sign(self.secret, body))  # a new delivery key each
        else:
            headers["x-socialflow-secret"] = self.secret
        client = await self.free.get()
        if self.sent is not None:  # CLOCK_MONOTONIC: comparable with other processes' readings
            self.sent[n] = time.monotonic()
        try:
            response = await client.post(
                self.urls[n % len(self.urls)], content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            return False
        finally:
            self.free.put_nowait(client)
        self.status[str(response.status_code)] += 1
        if response.status_code == self.accept_status:
            with contextlib.suppress(ValueError, AttributeError):
                if response.json().get("duplicate"):
                    self.duplicates += 1
            return True
        return False


async def closed_loop(
    sender: Sender, first: int, count: int, concurrency: int, deadline: float
) -> tuple[list[float], float, float]:
    """``count`` requests, ``concurrency`` in flight; latency of each accepted one (ms)."""
    latencies: list[float] = []
    next_n = first
    end_n = first + count

    async def one_lane() -> None:
        nonlocal next_n
        while next_n < end_n and time.monotonic() < deadline:
            n = next_n
            next_n += 1
            start = time.perf_counter()
            if await sender.send(n):
                latencies.append((time.perf_counter() - start) * 1000)

    started = time.monotonic()
    await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return latencies, started, time.monotonic()


async def paced(
    sender: Sender, first: int, count: int, rate: float, deadline: float
) -> tuple[list[float], float, float]:
    """``count`` requests at ``rate`` per second (open loop), ``concurrency`` in flight at most;
    latency from each request's scheduled send time (ms)."""
    latencies: list[float] = []
    started = time.monotonic()
    base = time.perf_counter()

    async def one(n: int, due: float) -> None:
        if await sender.send(n):  # waits for a free client: at most `concurrency` in flight
            latencies.append((time.perf_counter() - due) * 1000)

    tasks = []
    for i in range(count):
        due = base + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() > deadline:
            break
        tasks.append(asyncio.create_task(one(first + i, due)))
    await asyncio.gather(*tasks)
    return latencies, started, time.monotonic()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--urls", required=True)
    parser.add_argument("--secret", default="", help="required unless --auth none")
    parser.add_argument("--auth", choices=("header", "hmac", "none"), default="header")
    parser.add_argument(
        "--accept-status", type=int, default=202, help="the status of an accepted request (202)"
    )
    parser.add_argument(
        "--quiet-every",
        type=int,
        default=0,
        help="texts ask the price except every k-th (0: a fixed text without it)",
    )
    parser.add_argument(
        "--record-sends",
        action="store_true",
        help="report each measured request's send time (time.monotonic) as 'sent'",
    )
    parser.add_argument("--tag", default="bench")
    parser.add_argument("--offset", type=int, default=0, help="first request number")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.0, help="paced per second; 0: closed")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per phase")
    args = parser.parse_args()
    if args.auth != "none" and not args.secret:
        parser.error(f"--secret is required with --auth {args.auth}")
    sender = Sender(args)
    try:
        warm_deadline = time.monotonic() + args.deadline
        await closed_loop(sender, args.offset, args.warmup, args.concurrency, warm_deadline)
        warm = {"status": dict(sender.status), "errors": dict(sender.errors)}
        warm_accepted = sender.status.get("202", 0)
        sender.status.clear()
        sender.errors.clear()
        print("ready", flush=True)
        if not sys.stdin.readline():
            return
        cpu_before = os.times()
        deadline = time.monotonic() + args.deadline
        first = args.offset + args.warmup
        if args.rate > 0:
            lat, start, end = await paced(sender, first, args.requests, args.rate, deadline)
        else:
            lat, start, end = await closed_loop(
                sender, first, args.requests, args.concurrency, deadline
            )
        cpu_after = os.times()
    finally:
        await sender.aclose()
    result: dict[str, Any] = {
        "latencies_ms": lat,
        "start": start,
        "end": end,
        "status": dict(sender.status),
        "errors": dict(sender.errors),
        "duplicates": sender.duplicates,
        "warmup": warm,
        "warmup_accepted": warm_accepted,
        "cpu_seconds": (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
    }
    if sender.sent is not None:
        result["sent"] = {str(n): t for n, t in sender.sent.items() if n >= first}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
