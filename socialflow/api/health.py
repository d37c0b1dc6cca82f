"""Liveness and readiness probes."""

from __future__ import annotations

import os
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from socialflow.api.deps import DatabaseDep, SettingsDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", name="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", name="readyz", responses={503: {"description": "A dependency is down."}})
async def readyz(database: DatabaseDep, settings: SettingsDep) -> JSONResponse:
    """The database and Prefect's API answer."""
    checks: dict[str, Any] = {}
    try:
        async with database.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}: {exc}"
    api_url = settings.prefect.api_url or os.environ.get("PREFECT_API_URL")
    if not api_url:
        checks["prefect"] = "error: no Prefect API configured (PREFECT_API_URL)"
    else:
        try:
            async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
                answer = await client.get(f"{api_url.rstrip('/')}/health")
            checks["prefect"] = "ok" if answer.is_success else f"error: HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            checks["prefect"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
