"""Sign-in endpoints: browser login (cookie), API tokens, logout, password change, and
fastapi-users' routers for sign-up, password reset, email verification and the profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

from socialflow.api.auth.models import User
from socialflow.api.auth.oauth import router as oauth_router
from socialflow.api.auth.oauth import start_browser_session
from socialflow.api.auth.ratelimit import LoginLimiter, client_address
from socialflow.api.auth.schemas import (
    LoginRead,
    PasswordChange,
    TokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from socialflow.api.auth.sessions import TokenStrategy, revoke_tokens
from socialflow.api.auth.users import (
    UserManager,
    current_active_user_token,
    fastapi_users,
    get_user_manager,
    token_strategy,
)
from socialflow.api.deps import LoginLimiterDep, SessionDep
from socialflow.api.middleware import CSRF_COOKIE, SESSION_COOKIE
from socialflow.core.errors import UserError

__all__ = ["router"]

router = APIRouter()
FormDep = Annotated[OAuth2PasswordRequestForm, Depends()]
ManagerDep = Annotated[UserManager, Depends(get_user_manager)]
StrategyDep = Annotated[TokenStrategy, Depends(token_strategy)]
UserTokenDep = Annotated[tuple[User, str], Depends(current_active_user_token)]


async def _authenticate(
    request: Request, form: OAuth2PasswordRequestForm, manager: UserManager, limiter: LoginLimiter
) -> User:
    await limiter.check(client_address(request), form.username)
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
    strategy: StrategyDep,
    limiter: LoginLimiterDep,
) -> JSONResponse:
    """Sign in from the browser: sets the HttpOnly session cookie and the CSRF cookie."""
    user = await _authenticate(request, form, manager, limiter)
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
async def token(
    request: Request,
    form: FormDep,
    manager: ManagerDep,
    strategy: StrategyDep,
    limiter: LoginLimiterDep,
) -> TokenRead:
    """Sign in from a script: returns a bearer token for the Authorization header.

    The token is opaque and kept server-side (as a digest) like a browser session: it lasts
    ``SOCIALFLOW_AUTH_TOKEN_LIFETIME_SECONDS`` and ends earlier with ``POST /api/auth/logout``
    or a password change.
    """
    user = await _authenticate(request, form, manager, limiter)
    return TokenRead(access_token=await strategy.write_token(user))


@router.post("/auth/logout", status_code=204, name="auth_logout")
async def logout(request: Request, current: UserTokenDep, session: SessionDep) -> Response:
    """Sign out: the session or bearer token this request was made with ends server-side, and
    so does the browser session of a cookie sent along; the cookies are cleared."""
    user, used = current
    tokens = {used, request.cookies.get(SESSION_COOKIE) or used}
    await revoke_tokens(session, user.id, only=tokens)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/auth/change-password", status_code=204, name="auth_change_password")
async def change_password(
    request: Request, body: PasswordChange, current: UserTokenDep, manager: ManagerDep
) -> Response:
    """Change your password: needs the current one. Every other session and bearer token of
    yours ends; the one making this request stays signed in."""
    user, used = current
    await manager.change_password(
        user,
        current_password=body.current_password,
        new_password=body.new_password,
        keep_token=used,
        request=request,
    )
    return Response(status_code=204)


router.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth")
router.include_router(fastapi_users.get_reset_password_router(), prefix="/auth")
router.include_router(fastapi_users.get_verify_router(UserRead), prefix="/auth")
router.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users")
router.include_router(oauth_router)
