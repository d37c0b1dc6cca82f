"""Outgoing email behind an interface; development logs the message instead of sending it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from socialflow.core.logging import get_logger

__all__ = ["EmailMessage", "EmailSender", "LogEmailSender"]

_log = get_logger(__name__)


@dataclass(frozen=True)
class EmailMessage:
    """One message."""

    to: str
    subject: str
    body: str


class EmailSender(Protocol):
    """Sends email (SMTP or a provider's API in production)."""

    async def send(self, message: EmailMessage) -> None: ...


@dataclass
class LogEmailSender:
    """Logs each message and keeps the latest ones, for development and tests."""

    sent: list[EmailMessage] = field(default_factory=list)
    keep: int = 100

    async def send(self, message: EmailMessage) -> None:
        self.sent = [*self.sent[-(self.keep - 1) :], message]
        _log.info("email", to=message.to, subject=message.subject, body=message.body)
