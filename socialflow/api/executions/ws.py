"""The live run stream of a workspace over WebSocket: who may connect, the state sent first,
then every update as it happens.

Credentials are the API's: a bearer token (``Authorization: Bearer ...``, or the ``token`` query
parameter for scripts that cannot set headers on a WebSocket; URLs end up in access logs, so
prefer the header) or the ``sf_session`` cookie, which is how the web app connects, accepted
only from the app's own origin (or a configured CORS origin), so that another site cannot open
a stream with a visitor's cookie. Refusals come after the handshake, as close codes a
browser can read (a refused handshake shows only as a generic failure there):

- 4401: not signed in, or the token or session is invalid or expired;
- 4403: not a member of the workspace (the same whether it exists or not), or a session cookie
  sent from a foreign origin;
- 1013: the client read too slowly and fell behind; reconnecting sends the current state again.

Messages are JSON objects with a ``type``: first one ``snapshot`` (``ExecutionSnapshotRead``),
then ``execution`` (``ExecutionEventRead``) and ``node`` (``NodeEventRead``) messages in the
order they happened. Messages from the client are ignored.

Runs executed in this process are streamed straight from its hub; runs of worker processes
reach the hub through the database relay (``socialflow.orchestration._relay``), about 0.1 to 0.3 s
later.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyAccessTokenDatabase
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from socialflow.api.app_state import get_app_settings, get_database, get_email
from socialflow.api.auth.models import AccessToken, OAuthAccount, User
from socialflow.api.auth.sessions import TokenStrategy
from socialflow.api.auth.users import UserManager
from socialflow.api.executions import service
from socialflow.api.executions.schemas import (
    ExecutionEventRead,
    ExecutionSnapshotRead,
    NodeEventRead,
)
from socialflow.api.middleware import SESSION_COOKIE
from socialflow.core.settings import Settings
from socialflow.orchestration import (
    ExecutionEvents,
    ExecutionUpdate,
    NodeEvent,
    Subscription,
    get_runtime,
)

__all__ = [
    "CLOSE_FORBIDDEN",
    "CLOSE_LAGGED",
    "CLOSE_UNAUTHENTICATED",
    "events_hub",
    "stream",
]

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_LAGGED = 1013  # "try again later"


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def events_hub(app: FastAPI) -> ExecutionEvents:
    """The hub of the app (``app.state.events``), else the process runtime's."""
    hub = getattr(app.state, "events", None)
    return hub if isinstance(hub, ExecutionEvents) else get_runtime().events


async def _authenticate(connection: HTTPConnection, *, session: AsyncSession) -> User | None:
    """The active user behind a connection's bearer token or session cookie, if any; refuses a
    session cookie sent from a foreign origin."""
    settings = get_app_settings(connection)
    user_db = SQLAlchemyUserDatabase[User, uuid.UUID](session, User, OAuthAccount)
    manager = UserManager(user_db, settings, get_email(connection))
    # bearer tokens and browser sessions are both rows of access_token (stored as digests)
    tokens = TokenStrategy(
        SQLAlchemyAccessTokenDatabase(session, AccessToken),
        lifetime_seconds=settings.auth.token_lifetime_seconds,
    )
    token = _bearer_token(connection)
    user: User | None
    if token is not None:
        user = await tokens.read_token(token, manager)
    else:
        cookie = connection.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        if not _origin_allowed(connection, settings):
            msg = "session cookies are accepted from this app's origin only"
            raise _Refused(CLOSE_FORBIDDEN, msg)
        user = await tokens.read_token(cookie, manager)
    return user if user is not None and user.is_active else None


async def stream(
    websocket: WebSocket, workspace_id: uuid.UUID, *, execution_id: uuid.UUID | None
) -> None:
    """Serve one stream: authorise, send the current state, then follow the updates.

    Args:
        websocket: The connection, not yet accepted.
        workspace_id: The workspace whose runs are streamed.
        execution_id: Follow only this execution.
    """
    await websocket.accept()
    prefect_ui = service.prefect_ui_url(get_app_settings(websocket))
    try:
        async with get_database(websocket).sessionmaker() as session:
            await _authorise(websocket, workspace_id, session=session)
            # subscribe before reading the database: nothing published after the read is lost
            subscription = events_hub(websocket.app).subscribe(
                workspace_id, execution_id=execution_id
            )
            try:
                executions = await service.current_state(
                    workspace_id,
                    subscription.snapshot,
                    execution_id=execution_id,
                    prefect_ui=prefect_ui,
                    session=session,
                )
            except BaseException:
                subscription.close()
                raise
    except _Refused as refused:
        await websocket.close(code=refused.code, reason=refused.reason)
        return
    with subscription:
        snapshot = ExecutionSnapshotRead(
            workspace_id=workspace_id, execution_id=execution_id, executions=executions
        )
        try:
            await websocket.send_text(snapshot.model_dump_json())
        except WebSocketDisconnect:
            return
        await _follow(websocket, subscription)


async def _authorise(
    websocket: WebSocket, workspace_id: uuid.UUID, *, session: AsyncSession
) -> None:
    user = await _authenticate(websocket, session=session)
    if user is None:
        msg = "not signed in: send a bearer token (header or ?token=) or the session cookie"
        raise _Refused(CLOSE_UNAUTHENTICATED, msg)
    if await service.get_member_role(workspace_id, user.id, session=session) is None:
        raise _Refused(CLOSE_FORBIDDEN, f"not a member of workspace {workspace_id}")


async def _follow(websocket: WebSocket, subscription: Subscription) -> None:
    pump = asyncio.create_task(_pump(websocket, subscription))
    listen = asyncio.create_task(_until_disconnect(websocket))
    client_left = False
    try:
        done, _pending = await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
        client_left = listen in done
    finally:
        listen.cancel()
        if not pump.done():
            pump.cancel()
        await asyncio.gather(listen, return_exceptions=True)
        await asyncio.gather(pump, return_exceptions=True)
    if not pump.cancelled():
        pump.result()  # a failure other than the client leaving is a bug: let it surface
    if subscription.lagged and not client_left:
        msg = "fell behind the run updates; reconnect to get the current state"
        await websocket.close(code=CLOSE_LAGGED, reason=msg)


async def _pump(websocket: WebSocket, subscription: Subscription) -> None:
    try:
        async for event in subscription:
            await websocket.send_text(_message(event))
    except WebSocketDisconnect:
        return


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _message(event: ExecutionUpdate) -> str:
    if isinstance(event, NodeEvent):
        return NodeEventRead.model_validate(event).model_dump_json()
    return ExecutionEventRead.model_validate(event).model_dump_json()


def _bearer_token(connection: HTTPConnection) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return connection.query_params.get("token") or None


def _origin_allowed(connection: HTTPConnection, settings: Settings) -> bool:
    origin = connection.headers.get("origin")
    if origin is None:  # not a browser: a cookie it sends is its own, not an ambient one
        return True
    allowed = {_origin(settings.api.public_url), *(_origin(o) for o in settings.api.cors_origins)}
    if _origin(origin) in allowed:
        return True
    return urlsplit(origin).netloc.lower() == connection.headers.get("host", "").lower()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
