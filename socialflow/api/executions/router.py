"""executions endpoints."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(tags=["executions"])

# WebSocket routes live outside the /api prefix, at /ws/...
ws_router = APIRouter(tags=["executions"])
