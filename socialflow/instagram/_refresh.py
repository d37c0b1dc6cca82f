"""Daily refresh of long-lived Instagram tokens and check of Facebook Page tokens, as a
Prefect flow."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from prefect import flow
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.credentials import Credential, key_wrapper, open_credential
from socialflow.core.crypto import DecryptionError, KeyWrapper
from socialflow.core.db import Database, utcnow
from socialflow.core.errors import AppError
from socialflow.core.logging import get_logger
from socialflow.core.settings import InstagramSettings, get_settings
from socialflow.instagram._errors import TokenInvalidError
from socialflow.instagram._models import InstagramAccount, LoginKind, TokenStatus
from socialflow.instagram._oauth import refresh_token, store_token
from socialflow.instagram.client import GraphClient

__all__ = ["RefreshReport", "refresh_instagram_tokens", "refresh_tokens"]

_log = get_logger(__name__)
#: tokens this close to expiry are flagged ``expiring`` when a refresh fails
_EXPIRING = timedelta(days=10)


@dataclass
class RefreshReport:
    """What one refresh pass did, by account id."""

    refreshed: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: Facebook Login accounts whose Page token Meta still accepts
    checked: list[str] = field(default_factory=list)


async def refresh_tokens(
    db: Database,
    settings: InstagramSettings,
    keys: KeyWrapper,
    http: httpx.AsyncClient,
    *,
    now: datetime | None = None,
) -> RefreshReport:
    """Refresh every Instagram Login token older than ``settings.refresh_after_hours``, and
    check every Facebook Login account's Page token.

    An expired token is marked ``expired``; one Meta refuses with code 190 ``revoked``; a
    passing failure leaves the token for the next pass (``expiring`` when close to its end).
    Page tokens taken from a long-lived user token do not expire and cannot be refreshed
    (SPEC §7.2); they stop working when the person changes password, loses the Page role or
    removes the app, which the check finds (code 190 → ``revoked``).

    Args:
        db: The application database.
        settings: Graph host and the refresh age.
        keys: Master keys to open and re-seal tokens.
        http: Outbound client.
        now: The current time (defaults to now).

    Returns:
        Which accounts were refreshed, found expired or failed.
    """
    now = now or utcnow()
    cutoff = now - timedelta(hours=settings.refresh_after_hours)
    report = RefreshReport()
    async with db.sessionmaker() as session:
        accounts = (
            await session.scalars(
                select(InstagramAccount).where(
                    InstagramAccount.login_kind == LoginKind.INSTAGRAM,
                    InstagramAccount.token_status.in_([TokenStatus.VALID, TokenStatus.EXPIRING]),
                    or_(
                        InstagramAccount.token_refreshed_at < cutoff,
                        InstagramAccount.token_refreshed_at.is_(None)
                        & (InstagramAccount.created_at < cutoff),
                    ),
                )
            )
        ).all()
        for account in accounts:
            name = str(account.id)
            if account.token_expires_at is not None and account.token_expires_at <= now:
                account.token_status = TokenStatus.EXPIRED
                account.last_error = (
                    "the token expired before it was refreshed; reconnect the account"
                )
                report.expired.append(name)
                continue
            credential = (
                await session.get(Credential, account.credential_id)
                if account.credential_id
                else None
            )
            if credential is None:
                account.token_status = TokenStatus.INVALID
                account.last_error = "no stored token; reconnect the account"
                report.failed.append(name)
                continue
            try:
                token = await refresh_token(
                    http, settings, open_credential(credential, keys)["access_token"]
                )
            except TokenInvalidError as exc:
                account.token_status, account.last_error = TokenStatus.REVOKED, exc.message
                report.expired.append(name)
                continue
            except AppError as exc:
                close = (
                    account.token_expires_at is not None
                    and account.token_expires_at - now < _EXPIRING
                )
                account.token_status = TokenStatus.EXPIRING if close else account.token_status
                account.last_error = exc.message
                report.failed.append(name)
                continue
            await store_token(session, account, token, keys)
            report.refreshed.append(name)
        await _check_page_tokens(session, settings, keys, http, report)
        await session.commit()
    return report


async def _check_page_tokens(
    session: AsyncSession,
    settings: InstagramSettings,
    keys: KeyWrapper,
    http: httpx.AsyncClient,
    report: RefreshReport,
) -> None:
    accounts = await session.scalars(
        select(InstagramAccount).where(
            InstagramAccount.login_kind == LoginKind.FACEBOOK,
            InstagramAccount.token_status.in_([TokenStatus.VALID, TokenStatus.EXPIRING]),
        )
    )
    for account in accounts.all():
        name = str(account.id)
        credential = (
            await session.get(Credential, account.credential_id) if account.credential_id else None
        )
        if credential is None:
            account.token_status = TokenStatus.INVALID
            account.last_error = "no stored token; reconnect with Facebook"
            report.failed.append(name)
            continue
        try:
            page = GraphClient(
                open_credential(credential, keys)["access_token"],
                settings,
                login_kind=LoginKind.FACEBOOK,
                http=http,
            )
            await page.request("GET", "me", params={"fields": "id"}, call="check the Page token")
        except TokenInvalidError as exc:
            account.token_status = TokenStatus.REVOKED
            account.last_error = (
                f"Facebook no longer accepts the Page token (password changed, Page role lost "
                f"or the app removed); reconnect with Facebook. {exc.message}"
            )
            report.expired.append(name)
            continue
        except DecryptionError as exc:
            # one account's unreadable token must not stop the pass for the others
            account.token_status = TokenStatus.INVALID
            account.last_error = f"the stored token cannot be opened ({exc.message}); reconnect"
            report.failed.append(name)
            continue
        except AppError as exc:
            account.last_error = exc.message
            report.failed.append(name)
            continue
        account.last_error = None
        report.checked.append(name)


@flow(name="socialflow-refresh-instagram-tokens", persist_result=False)
async def refresh_instagram_tokens() -> dict[str, list[str]]:
    """Refresh long-lived Instagram tokens older than a day (deployment in prefect.yaml)."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        async with httpx.AsyncClient(trust_env=False) as http:
            report = await refresh_tokens(db, settings.instagram, key_wrapper(settings), http)
    finally:
        await db.dispose()
    _log.info(
        "instagram tokens refreshed",
        refreshed=len(report.refreshed),
        expired=len(report.expired),
        failed=len(report.failed),
        checked=len(report.checked),
    )
    return {
        "refreshed": report.refreshed,
        "expired": report.expired,
        "failed": report.failed,
        "checked": report.checked,
    }
