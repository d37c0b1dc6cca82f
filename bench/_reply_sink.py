"""The local endpoint ``bench/burst.py``'s flow POSTs its replies to (run by it, not a bench).

``POST /reply`` records the JSON body's ``n``; ``GET /seen`` lists the ``n`` replied to;
``GET /stats`` answers how many replies came, how many distinct ``n``, the duplicates, and the
times of the first and last reply.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

import uvicorn

seen: Counter[int] = Counter()
times: dict[str, float] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST" and scope["path"] == "/reply":
        try:
            n = int(json.loads(body)["n"])
        except (ValueError, KeyError, TypeError):
            await _answer(send, 400, {"error": "body needs an integer n"})
            return
        seen[n] += 1
        now = time.time()
        times.setdefault("first", now)
        times["last"] = now
        await _answer(send, 200, {"ok": True})
        return
    if scope["path"] == "/seen":
        await _answer(send, 200, sorted(seen))
        return
    if scope["path"] == "/stats":
        await _answer(
            send,
            200,
            {
                "replies": sum(seen.values()),
                "distinct": len(seen),
                "duplicates": sum(c - 1 for c in seen.values() if c > 1),
                **times,
            },
        )
        return
    await _answer(send, 404, {"error": "not found"})


async def _answer(send: Any, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
