"""Waking dispatchers and workers: PostgreSQL LISTEN/NOTIFY, or polling on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from socialflow.core.logging import get_logger

__all__ = ["Wakeup"]

_log = get_logger(__name__)


class Wakeup:
    """Waits until one of ``channels`` is notified or ``poll_interval`` passes.

    On PostgreSQL a dedicated autocommit connection LISTENs; elsewhere (SQLite) ``wait`` is a
    plain timer. A lost connection degrades to polling and is re-established.

    Args:
        database_url: The application database's SQLAlchemy URL.
        channels: NOTIFY channels to listen on.
        poll_interval: Longest wait without a notification.
    """

    def __init__(
        self, database_url: str, channels: tuple[str, ...], *, poll_interval: float
    ) -> None:
        self.dsn = (
            database_url.replace("postgresql+psycopg://", "postgresql://", 1)
            if database_url.startswith("postgresql")
            else None
        )
        self.channels = channels
        self.poll_interval = poll_interval
        self._event = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Wakeup:
        if self.dsn is not None:
            self._reader = asyncio.create_task(self._listen(), name="wakeup-listen")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def poke(self) -> None:
        """Wake a waiter now (work was added in this process)."""
        self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        """Return on a notification or after ``timeout`` (default: the poll interval)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout or self.poll_interval)
        self._event.clear()

    async def _listen(self) -> None:
        import psycopg

        assert self.dsn is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    for channel in self.channels:
                        await conn.execute(f'LISTEN "{channel}"')
                    self._event.set()  # catch up on anything sent while not listening
                    async for _ in conn.notifies():
                        self._event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("listen connection lost; polling until it is back", error=repr(exc))
                await asyncio.sleep(1)
