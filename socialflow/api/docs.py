"""The API's documentation pages (``/docs``, ``/redoc``) and the favicon, served by the app
itself: the app's Content-Security-Policy allows scripts from its own origin only, so the
default pages (assets from a CDN, an inline start-up script) showed nothing.

Swagger UI's and ReDoc's files come from the ``fastapi-offline`` package (maintained, tracks
Swagger UI 5); the start-up script and the favicon are this package's ``static/`` files.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse

__all__ = ["ASSETS_PATH", "FAVICON_PATH", "install_docs"]

#: where Swagger UI's and ReDoc's files are served
ASSETS_PATH = "/docs/assets"
#: the app's icon (the web app's index.html names it too)
FAVICON_PATH = "/favicon.svg"

_VENDOR = Path(fastapi_offline.__file__).resolve().parent / "static"
_OWN = Path(__file__).resolve().parent / "static"
_CACHE = {"Cache-Control": "public, max-age=86400"}


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        f'<link rel="icon" type="image/svg+xml" href="{FAVICON_PATH}">\n'
        f"{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI), ``/redoc`` (ReDoc), their files and ``/favicon.svg``.

    Create ``app`` with ``docs_url=None, redoc_url=None``; every file the pages load comes
    from the app's own origin.
    """
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{title} - Swagger UI",
            f'<link rel="stylesheet" href="{root}{ASSETS_PATH}/swagger-ui.css">\n',
            f'<div id="swagger-ui" data-openapi-url="{escape(root + openapi_url)}"></div>\n'
            f'<script src="{root}{ASSETS_PATH}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{root}{ASSETS_PATH}/swagger-init.js"></script>\n',
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{title} - ReDoc",
            "",
            f'<redoc spec-url="{escape(root + openapi_url)}"></redoc>\n'
            f'<script src="{root}{ASSETS_PATH}/redoc.standalone.js"></script>\n',
        )

    @app.get(f"{ASSETS_PATH}/swagger-init.js", include_in_schema=False)
    async def swagger_init() -> FileResponse:
        return FileResponse(_OWN / "swagger-init.js", media_type="text/javascript", headers=_CACHE)

    @app.get(FAVICON_PATH, include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(_OWN / "favicon.svg", media_type="image/svg+xml", headers=_CACHE)

    app.mount(ASSETS_PATH, StaticFiles(directory=_VENDOR), name="docs-assets")
