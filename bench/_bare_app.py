"""The ingest baseline: a bare FastAPI app with the webhook's route shape that answers 202
without storing anything. Served by uvicorn exactly like the API (``bench/ingest.py``).

It does what costs nearly nothing and any receiver must do (parse the path's UUID, read the
body, compare the secret header in constant time, answer a small JSON body) and nothing else:
no middleware, no database, no trigger lookup.
"""

from __future__ import annotations

import hmac
import os
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

_SECRET = os.environ.get("BENCH_BARE_SECRET", "bench").encode()

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/hooks/{flow_id}", status_code=202)
async def receive(flow_id: uuid.UUID, request: Request) -> JSONResponse:  # noqa: ARG001
    await request.body()
    if not hmac.compare_digest(request.headers.get("x-socialflow-secret", "").encode(), _SECRET):
        return JSONResponse({"code": "webhook_unauthorized"}, status_code=401)
    return JSONResponse({"event_id": str(uuid.uuid4()), "duplicate": False}, status_code=202)
