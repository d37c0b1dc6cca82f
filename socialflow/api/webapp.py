"""Serves the built web app (``frontend/dist``): static assets and the SPA fallback."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DEFAULT_DIST", "RESERVED_PREFIXES", "mount_webapp"]

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"
# paths the app never answers with the web app, even when nothing else matched
RESERVED_PREFIXES = (
    "/api",
    "/ws",
    "/hooks",
    "/webhooks",
    "/healthz",
    "/readyz",
    "/docs",
    "/redoc",
    "/openapi.json",
)
_NOT_BUILT = (
    "The Socialflow web app is not built yet.\n\n"
    "Build it with `make frontend` (or `cd frontend && npm ci && npm run build`) and reload;\n"
    "`make up` builds it when it is missing or stale. The API is up: see /docs.\n"
)


def _reserved(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED_PREFIXES)


class _WebApp:
    """The router's fallback: GET and HEAD of unreserved paths get a file of the build or, for
    client-side routes, ``index.html``; everything else goes to the original fallback (404)."""

    def __init__(self, dist: Path, fallback: ASGIApp) -> None:
        self.dist = dist
        self.fallback = fallback

    def _response(self, path: str) -> Response | None:
        index = self.dist / "index.html"
        if not index.is_file():
            return PlainTextResponse(_NOT_BUILT, status_code=503) if path == "/" else None
        root = self.dist.resolve()
        candidate = (root / path.lstrip("/")).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            immutable = candidate.parent == root / "assets"
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return FileResponse(candidate, headers={"Cache-Control": cache})
        if path.startswith("/assets/") or "." in path.rsplit("/", 1)[-1]:
            return None  # a missing file is a 404, not the app
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "/")
        response = None
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not _reserved(path):
            response = self._response(path)
        if response is None:
            await self.fallback(scope, receive, send)
            return
        await response(scope, receive, send)


def mount_webapp(app: FastAPI, dist: Path = DEFAULT_DIST) -> None:
    """Serve the web app from ``dist`` for every GET no route answers, outside the reserved
    prefixes (``/api``, ``/ws``, ``/hooks``, ``/webhooks``, health and docs).

    Args:
        app: The API application; call after every router is included.
        dist: The build directory; looked at on each request, so building later needs no
            restart. Without a build, ``/`` says how to make one. Mounting again only
            changes the directory.
    """
    current = app.router.default
    if isinstance(current, _WebApp):
        current.dist = dist
        return
    app.router.default = _WebApp(dist, current)
