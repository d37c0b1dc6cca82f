"""Security tests drive the real API: the API fixtures (the app on each database, its client)."""

from __future__ import annotations

from tests.api.conftest import app, client

__all__ = ["app", "client"]
