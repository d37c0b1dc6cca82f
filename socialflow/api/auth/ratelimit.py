"""Login attempts limited per client address and per account, in a sliding window.

Attempts are rows in ``login_attempt``, so every API replica counts the same attempts: the
limit holds for the deployment, not per process. Two replicas checking at the same instant may
each let one attempt through at the edge of the limit; nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from socialflow.api.auth.models import LoginAttempt
from socialflow.core.db import Database, utcnow
from socialflow.core.errors import RateLimitedError

__all__ = ["LoginLimiter", "client_address"]


def client_address(connection: HTTPConnection) -> str:
    """The address attempts are counted under: the peer of the connection, or the client a
    trusted proxy named (``SOCIALFLOW_API_TRUSTED_PROXIES``; the app's proxy-headers middleware
    has already put it in place). Forwarded headers from anyone else never get here."""
    return connection.client.host if connection.client else "unknown"


class LoginLimiter:
    """Counts attempts per IP (all attempts) and per account (failures only).

    Args:
        db: The database every replica shares.
        per_account: Failed attempts allowed per account per window.
        per_ip: Attempts allowed per address per window.
        window_seconds: Window length.
        clock: Wall clock (injectable for tests).
    """

    def __init__(
        self,
        db: Database,
        *,
        per_account: int,
        per_ip: int,
        window_seconds: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.per_account = per_account
        self.per_ip = per_ip
        self.window = timedelta(seconds=window_seconds)
        self.clock = clock
        self._pruned_at: datetime | None = None

    async def check(self, ip: str, account: str) -> None:
        """Count an attempt from ``ip`` and refuse it when a limit is reached.

        Raises:
            RateLimitedError: With the seconds until the next attempt is allowed.
        """
        now = self.clock()
        async with self.db.sessionmaker() as session:
            await self._prune(session, now)
            for key, limit, what in (
                (_account_key(account), self.per_account, "this account"),
                (f"ip:{ip}", self.per_ip, "your address"),
            ):
                count, oldest = (
                    await session.execute(
                        select(func.count(), func.min(LoginAttempt.at)).where(
                            LoginAttempt.key == key, LoginAttempt.at > now - self.window
                        )
                    )
                ).one()
                if count >= limit and oldest is not None:
                    retry = max(1, math.ceil((oldest + self.window - now).total_seconds()))
                    msg = f"too many login attempts for {what}; try again in {retry} s"
                    raise RateLimitedError(msg, retry_after=retry)
            await session.execute(insert(LoginAttempt).values(key=f"ip:{ip}", at=now))
            await session.commit()

    async def failed(self, account: str) -> None:
        """Count a failed login for ``account``."""
        async with self.db.sessionmaker() as session:
            await session.execute(
                insert(LoginAttempt).values(key=_account_key(account), at=self.clock())
            )
            await session.commit()

    async def succeeded(self, account: str) -> None:
        """Forget an account's failures after a successful login."""
        async with self.db.sessionmaker() as session:
            await session.execute(
                delete(LoginAttempt).where(LoginAttempt.key == _account_key(account))
            )
            await session.commit()

    async def _prune(self, session: AsyncSession, now: datetime) -> None:
        # at most once a window per process: rows older than the window never count again
        if self._pruned_at is not None and now - self._pruned_at < self.window:
            return
        self._pruned_at = now
        await session.execute(delete(LoginAttempt).where(LoginAttempt.at <= now - self.window))


def _account_key(account: str) -> str:
    return f"account:{account.strip().lower()}"
