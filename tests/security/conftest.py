"""Security tests drive the real API as the API tests do: the same app, client and team fixtures."""

from __future__ import annotations

from tests.api.conftest import app, client, team

__all__ = ["app", "client", "team"]
