"""Sign-in endpoints: browser login (cookie), API tokens, logout, and fastapi-users' routers
for sign-up, password reset, email verification and the profile."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users.authentication.strategy.db import DatabaseStrategy

from socialflow.api.auth.models import AccessToken, User
from socialflow.api.auth.oauth import router as oauth_router
from socialflow.api.auth.oauth import start_browser_session
from socialflow.api.auth.ratelimit import LoginLimiter
from socialflow.api.auth.schemas import LoginRead, TokenRead, UserCreate, UserRead, UserUpdate
from socialflow.api.auth.users import (
    UserManager,
    _jwt_strategy,
    _session_strategy,
    current_active_user,
    fastapi_users,
    get_user_manager,
)
from socialflow.api.middleware import CSRF_COOKIE, SESSION_COOKIE
from socialflow.core.errors import UserError

__all__ = ["router"]

router = APIRouter()
FormDep = Annotated[OAuth2PasswordRequestForm, Depends()]
ManagerDep = Annotated[UserManager, Depends(get_user_manager)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _authenticate(
    request: Request, form: OAuth2PasswordRequestForm, manager: UserManager
) -> User:
    limiter: LoginLimiter = request.app.state.login_limiter
    await limiter.check(_client_ip(request), form.username)
    user = await manager.authenticate(form)
    if user is None or not user.is_active:
        await limiter.failed(form.username)
        msg = "wrong email or password"
        raise UserError(msg, code="login_bad_credentials")
    await limiter.succeeded(form.username)
    return user


@router.post("/auth/login", response_model=LoginRead, name="auth_login")
async def login(
    request: Request,
    form: FormDep,
    manager: ManagerDep,
    strategy: Annotated[DatabaseStrategy[User, uuid.UUID, AccessToken], Depends(_session_strategy)],
) -> JSONResponse:
    """Sign in from the browser: sets the HttpOnly session cookie and the CSRF cookie."""
    user = await _authenticate(request, form, manager)
    cookies = Response()
    csrf = await start_browser_session(cookies, user, strategy)
    response = JSONResponse(
        LoginRead(
            user=UserRead.model_validate(user, from_attributes=True), csrf_token=csrf
        ).model_dump(mode="json")
    )
    for value in cookies.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", value)
    await manager.on_after_login(user, request, response)
    return response


@router.post("/auth/token", response_model=TokenRead, name="auth_token")
async def token(request: Request, form: FormDep, manager: ManagerDep) -> TokenRead:
    """Sign in from a script: returns a bearer token (JWT) for the Authorization header."""
    user = await _authenticate(request, form, manager)
    return TokenRead(access_token=await _jwt_strategy(request).write_token(user))


@router.post("/auth/logout", status_code=204, name="auth_logout")
async def logout(
    request: Request,
    user: Annotated[User, Depends(current_active_user)],
    strategy: Annotated[DatabaseStrategy[User, uuid.UUID, AccessToken], Depends(_session_strategy)],
) -> Response:
    """End the browser session: the session token is deleted server-side, cookies cleared."""
    session_token = request.cookies.get(SESSION_COOKIE)
    if session_token:
        await strategy.destroy_token(session_token, user)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


router.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth")
router.include_router(fastapi_users.get_reset_password_router(), prefix="/auth")
router.include_router(fastapi_users.get_verify_router(UserRead), prefix="/auth")
router.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users")
router.include_router(oauth_router)
