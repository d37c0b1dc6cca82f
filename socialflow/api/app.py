"""The FastAPI application: ``create_app`` wires settings, database, routers and middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from socialflow import __version__
from socialflow.api import health, metrics
from socialflow.api.auth.email import EmailSender, LogEmailSender
from socialflow.api.auth.ratelimit import LoginLimiter
from socialflow.api.auth.router import router as auth_router
from socialflow.api.broadcasts.router import router as broadcasts_router
from socialflow.api.contacts.router import router as contacts_router
from socialflow.api.conversations.router import router as conversations_router
from socialflow.api.credentials.router import router as credentials_router
from socialflow.api.docs import install_docs
from socialflow.api.errors import ErrorBody, install_error_handlers
from socialflow.api.events.router import router as events_router
from socialflow.api.executions.router import router as executions_router
from socialflow.api.executions.router import ws_router as executions_ws_router
from socialflow.api.executions.ws import events_hub
from socialflow.api.flows.router import router as flows_router
from socialflow.api.flows.runs import router as runs_router
from socialflow.api.hooks.router import router as hooks_router
from socialflow.api.instagram.router import callback_router as instagram_callback_router
from socialflow.api.instagram.router import router as instagram_router
from socialflow.api.json_guard import JSONGuardMiddleware
from socialflow.api.knowledge.documents import MULTIPART_ALLOWANCE
from socialflow.api.knowledge.router import UPLOAD_PATH
from socialflow.api.knowledge.router import router as knowledge_router
from socialflow.api.middleware import SecurityMiddleware
from socialflow.api.node_types.router import router as node_types_router
from socialflow.api.posts.router import MEDIA_UPLOAD_PATH
from socialflow.api.posts.router import media_router as post_media_router
from socialflow.api.posts.router import router as posts_router
from socialflow.api.webapp import mount_webapp
from socialflow.api.webhooks.router import router as instagram_webhooks_router
from socialflow.api.workspaces.router import router as workspaces_router
from socialflow.core.db import Database
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings, get_settings
from socialflow.nodes import NodeRegistry, default_registry
from socialflow.orchestration import (
    ExecutionEvents,
    InboxWriter,
    TriggerCache,
    UpdateFeed,
    sync_node_types,
)

__all__ = ["create_app"]

_log = get_logger(__name__)
API_PREFIX = "/api"


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    registry: NodeRegistry | None = None,
    email: EmailSender | None = None,
    events: ExecutionEvents | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        settings: Settings; the environment's when omitted.
        db: The database; one is created from ``settings`` (and disposed at shutdown) when omitted.
        registry: Node kinds; the default registry (built-ins and plugins) when omitted.
        email: Outgoing email; logged when omitted.
        events: The live-update hub run updates are published to; the process runtime's hub
            (resolved per connection) when omitted.
    """
    settings = settings or get_settings()
    owns_db = db is None
    database = db or Database(settings.database_url, pool_size=settings.database.pool_size)
    node_registry = registry or default_registry()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with database.session() as session:
            count = await sync_node_types(session, node_registry)
        # runs execute in worker processes: their live updates arrive through the database
        feed = UpdateFeed(database, events_hub(app))
        feed_stop = asyncio.Event()
        feed_task = asyncio.create_task(feed.run(feed_stop), name="live-update-feed")
        await app.state.triggers.start()
        app.state.inbox.start()
        _log.info("api ready", node_types=count)
        yield
        feed_stop.set()
        feed_task.cancel()
        await asyncio.gather(feed_task, return_exceptions=True)
        await app.state.triggers.close()
        await app.state.inbox.close()
        if owns_db:
            await database.dispose()

    app = FastAPI(
        title="Socialflow",
        version=__version__,
        description="Build, publish and run social-media automations.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # served by install_docs from this origin: the CSP refuses a CDN's scripts
        docs_url=None,
        redoc_url=None,
        responses={
            400: {"model": ErrorBody, "description": "Bad input."},
            401: {"model": ErrorBody, "description": "Not signed in."},
            403: {"model": ErrorBody, "description": "Not allowed."},
            404: {"model": ErrorBody, "description": "Not found."},
            422: {"model": ErrorBody, "description": "Invalid request; every problem listed."},
        },
    )
    app.state.settings = settings
    app.state.db = database
    app.state.registry = node_registry
    # the webhook routes: triggers read through a per-process cache, events group-committed
    app.state.triggers = TriggerCache(database, settings)
    app.state.inbox = InboxWriter(database, connections=settings.database.inbox_connections)
    app.state.email = email or LogEmailSender()
    app.state.events = events
    app.state.login_limiter = LoginLimiter(
        database,
        per_account=settings.auth.login_attempts_per_account,
        per_ip=settings.auth.login_attempts_per_ip,
        window_seconds=settings.auth.login_window_seconds,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    # the webhook routes first: a router is matched route by route, and these take the traffic
    app.include_router(hooks_router)
    app.include_router(instagram_webhooks_router)
    app.include_router(metrics.router)  # internal network only (NGINX), see api/metrics.py
    for router in (
        auth_router,
        workspaces_router,
        flows_router,
        runs_router,
        credentials_router,
        executions_router,
        events_router,
        contacts_router,
        conversations_router,
        node_types_router,
        knowledge_router,
        instagram_router,
        instagram_callback_router,
        posts_router,
        post_media_router,
        broadcasts_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(executions_ws_router)
    install_docs(app)
    mount_webapp(app)  # last: the fallback for GETs no route answers
    # innermost: runs after the size and CSRF checks, and its refusals get CORS headers too;
    # the webhooks authenticate their raw body first and then decode it with the same rules
    app.add_middleware(
        JSONGuardMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        exempt=("/hooks/", "/webhooks/instagram"),
    )
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "X-Request-ID"],
        )
    app.add_middleware(
        SecurityMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        # Meta batches up to 1,000 updates; the webhook router enforces its own limit
        size_exempt=("/webhooks/instagram",),
        # uploads have their own limit (plus room for the multipart framing)
        body_limits=(
            (UPLOAD_PATH, settings.knowledge.max_upload_bytes + MULTIPART_ALLOWANCE),
            (MEDIA_UPLOAD_PATH, settings.publishing.max_video_bytes + MULTIPART_ALLOWANCE),
        ),
    )
    # outermost: every part of the app sees the client a trusted proxy named, and nobody
    # else's X-Forwarded-For; the servers start uvicorn with --no-proxy-headers so that this
    # setting, not uvicorn's default (loopback), is what decides
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.api.trusted_proxies)
    return app
