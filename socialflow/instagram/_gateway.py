"""What action nodes reach Instagram through: ledger first, policy, pacing, sandbox, then the
Graph API client."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from socialflow.core.credentials import Credential, open_credential
from socialflow.core.crypto import KeyWrapper
from socialflow.core.db import Database, rows_touched, utcnow
from socialflow.core.errors import TransientError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import InstagramSettings
from socialflow.instagram._errors import GraphError, TokenInvalidError
from socialflow.instagram._ledger import claim, idempotency_key, prior_private_reply
from socialflow.instagram._models import (
    AccountMode,
    InstagramAccount,
    OutboxMessage,
    OutboxStatus,
    TokenStatus,
)
from socialflow.instagram._pacing import hold_account, next_slot
from socialflow.instagram._policy import Verdict, check_action
from socialflow.instagram._templates import (
    button_template,
    check_buttons,
    check_cards,
    generic_template,
)
from socialflow.instagram.client import GraphClient

__all__ = ["ActionRequest", "ActionResult", "InstagramGateway"]

#: how long past the request timeout a ``sending`` row may stay silent before its sender counts
#: as gone, and how often a waiting run looks at it
SETTLE_MARGIN = 10.0
SETTLE_POLL_SECONDS = 0.2
_FINISH_RETRIES = (0.2, 0.5, 1.0, 2.0, 4.0)
_log = get_logger(__name__)

Action = Literal["reply_comment", "private_reply", "send_dm", "hide_comment"]


class ActionRequest(BaseModel):
    """One action a node wants performed."""

    action: Action
    node_id: str
    account: str = Field(default="", description="ig_user_id; empty: the workspace's only one.")
    target: str = Field(min_length=1, description="Comment id or recipient IGSID.")
    text: str | None = None
    quick_replies: list[dict[str, str]] = Field(default_factory=list)
    attachment: tuple[Literal["image", "file", "audio", "video"], str] | None = None
    #: a button template (with ``text``): at most 3 ``web_url`` / ``postback`` buttons
    buttons: list[dict[str, Any]] = Field(default_factory=list)
    #: a generic template: 1 to 10 cards
    cards: list[dict[str, Any]] = Field(default_factory=list)
    hide: bool = True
    comment_time: datetime | None = None
    last_user_message_at: datetime | None = None
    human_agent: bool = False
    #: distinguishes sends of one node to one target across events (a DM per message)
    occurrence: str = ""


class ActionResult(BaseModel):
    """What became of an action."""

    status: str
    ledger_id: uuid.UUID
    idempotency_key: str
    duplicate: bool
    policy_verdict: str
    policy_reason: str | None
    scheduled_for: datetime | None
    response: dict[str, Any] | None


class InstagramGateway:
    """The Instagram service of one run; the runner builds it and nodes receive it.

    Args:
        db: The application database.
        keys: Master keys to open account tokens.
        settings: Instagram settings.
        http: The shared outbound client.
        workspace_id: The run's workspace.
        flow_id: The run's flow.
        flow_version_id: The run's flow version.
        execution_id: The run.
        sandbox: Whether the run itself is sandboxed (editor test runs).
    """

    def __init__(
        self,
        db: Database,
        keys: KeyWrapper,
        settings: InstagramSettings,
        http: httpx.AsyncClient | None,
        *,
        workspace_id: uuid.UUID | None,
        flow_id: uuid.UUID | None,
        flow_version_id: uuid.UUID | None,
        execution_id: uuid.UUID,
        sandbox: bool,
    ) -> None:
        self.db, self.keys, self.settings, self.http = db, keys, settings, http
        self.workspace_id, self.flow_id = workspace_id, flow_id
        self.flow_version_id, self.execution_id, self.sandbox = (
            flow_version_id,
            execution_id,
            sandbox,
        )

    async def perform(self, request: ActionRequest) -> ActionResult:
        """Record, check, pace and (unless sandboxed) send one action, at most once.

        Raises:
            UserError: No such account, refused by policy, refused by Meta, token invalid.
            TransientError: Meta throttled or failed; the ledger row stays queued for a retry.
        """
        if request.buttons or request.cards:
            _template(request)  # refused before anything is recorded, with the field named
        account = await self._account(request.account)
        sandbox = self.sandbox or account.mode == AccountMode.SANDBOX
        version = self.flow_version_id or self.flow_id or self.execution_id
        key = idempotency_key(
            account.id,
            request.target,
            request.action,
            version,
            request.node_id,
            request.occurrence,
            f"sandbox:{self.execution_id}" if sandbox else "live",
        )
        age_unknown = None
        if request.action == "private_reply" and request.comment_time is None:
            # the 7-day rule needs the comment's age: ask Meta when the flow did not give it
            # (not for a row already claimed: its verdict is in the ledger)
            if sandbox:
                age_unknown = "no comment_time was given and a sandboxed run does not ask Meta"
            elif not await self._claimed(key):
                when, age_unknown = await self._comment_time(account, request.target)
                request = request.model_copy(update={"comment_time": when})
        async with self.db.sessionmaker() as session, hold_account(session, account.id):
            now = utcnow()
            prior = None
            if request.action == "private_reply":
                prior = await prior_private_reply(
                    session, account.id, request.target, key, sandbox=sandbox
                )
            verdict = check_action(
                request.action,
                now=now,
                text=request.text,
                quick_replies=len(request.quick_replies),
                comment_time=request.comment_time,
                comment_age_unknown=age_unknown,
                prior_private_reply=prior is not None,
                last_user_message_at=request.last_user_message_at,
                human_agent=request.human_agent,
            )
            status = (
                OutboxStatus.REFUSED
                if not verdict.allowed
                else (OutboxStatus.SANDBOXED if sandbox else OutboxStatus.QUEUED)
            )
            slot = None
            if status == OutboxStatus.QUEUED:
                slot = await next_slot(session, account.id, request.action, self.settings, now)
            row, created = await claim(
                session,
                {
                    "idempotency_key": key,
                    "workspace_id": account.workspace_id,
                    "account_id": account.id,
                    "flow_id": self.flow_id,
                    "flow_version_id": self.flow_version_id,
                    "execution_id": self.execution_id,
                    "node_id": request.node_id,
                    "action": request.action,
                    "target": request.target,
                    "payload": _payload(request, verdict),
                    "status": status,
                    "sandbox": sandbox,
                    "test_run": self.sandbox,
                    "policy_verdict": verdict.label,
                    "policy_reason": verdict.reason,
                    "scheduled_for": slot,
                },
            )
        if row.status == OutboxStatus.SENDING:
            # another run of the same step (a lapsed lease re-claimed elsewhere) may be calling
            # Meta right now: its outcome decides this one
            row = await self._settle(row)
        if row.status in (OutboxStatus.SENT, OutboxStatus.SANDBOXED):
            return _result(row, duplicate=not created)
        if row.status == OutboxStatus.REFUSED:
            msg = f"Instagram {request.action.replace('_', ' ')} refused: {row.policy_reason}"
            raise UserError(
                msg, code="instagram_policy_refused", details={"ledger_id": str(row.id)}
            )
        if row.status == OutboxStatus.FAILED:
            msg = (
                f"Instagram {request.action.replace('_', ' ')} failed earlier: {row.error_message}"
            )
            raise UserError(msg, code=row.error_code or "instagram_failed")
        if row.status == OutboxStatus.SENDING and request.action != "private_reply":
            # the sender stopped answering during the call: Meta may have it, and a second
            # public reply or DM is worse than none, so this one is given up (private replies
            # are safe: Meta refuses a second one)
            await self._finish(
                row.id,
                OutboxStatus.FAILED,
                error=(
                    "instagram_outcome_unknown",
                    "the process stopped during the call; whether Meta got it is unknown",
                ),
            )
            msg = "Instagram send interrupted earlier; not repeated to avoid a duplicate"
            raise UserError(msg, code="instagram_outcome_unknown")
        return await self._send(account, row, request, verdict, resumed=not created)

    async def _claimed(self, key: str) -> bool:
        async with self.db.sessionmaker() as session:
            found = await session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
            )
        return found is not None

    async def _comment_time(
        self, account: InstagramAccount, comment_id: str
    ) -> tuple[datetime | None, str | None]:
        """When the comment was made, read from the Graph API (``timestamp``), or why not.

        Raises:
            TransientGraphError: Meta throttled or failed; the node retries.
            TokenInvalidError: The account's token is no longer valid.
        """
        client = await self._client(account)
        try:
            comment = await client.get_comment(comment_id, fields="id,timestamp")
        except TokenInvalidError:
            raise
        except GraphError as exc:
            return None, f"no comment_time was given and Meta did not show the comment: {exc}"
        finally:
            await client.aclose()
        value = comment.get("timestamp")
        try:
            # Meta writes 2026-11-20T10:00:00+0000
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None, f"no comment_time was given and Meta's timestamp {value!r} is not a time"
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), None

    async def _client(self, account: InstagramAccount) -> GraphClient:
        """A Graph API client acting as ``account`` (the caller closes it)."""
        return GraphClient(
            await self._token(account),
            self.settings,
            ig_user_id=account.ig_user_id,
            login_kind=account.login_kind,
            http=self.http,
            on_token_invalid=lambda exc: self._token_invalid(account.id, exc),
        )

    async def _account(self, ig_user_id: str) -> InstagramAccount:
        if self.workspace_id is None:
            msg = "Instagram actions need a run that belongs to a workspace"
            raise UserError(msg, code="instagram_no_workspace")
        async with self.db.sessionmaker() as session:
            query = select(InstagramAccount).where(
                InstagramAccount.workspace_id == self.workspace_id
            )
            if ig_user_id:
                query = query.where(InstagramAccount.ig_user_id == ig_user_id)
            rows = list((await session.scalars(query.limit(2))).all())
        if len(rows) == 1:
            return rows[0]
        which = f"account {ig_user_id!r}" if ig_user_id else "an account (field 'account' is empty)"
        msg = (
            f"no Instagram {which} is connected to this workspace"
            if not rows
            else "several Instagram accounts are connected; set the field 'account'"
        )
        raise UserError(msg, code="instagram_account_missing")

    async def _send(
        self,
        account: InstagramAccount,
        row: OutboxMessage,
        request: ActionRequest,
        verdict: Verdict,
        *,
        resumed: bool,
    ) -> ActionResult:
        wait = ((row.scheduled_for or utcnow()) - utcnow()).total_seconds()
        if wait > self.settings.max_queue_wait_seconds:
            msg = f"Instagram pacing: next slot for this account is in {wait:.0f} s"
            raise TransientError(msg, retry_after=wait)
        if wait > 0:
            await asyncio.sleep(wait)
        if account.token_status in (TokenStatus.INVALID, TokenStatus.EXPIRED, TokenStatus.REVOKED):
            msg = (
                f"Instagram account @{account.username}: token {account.token_status}; reconnect it"
            )
            raise UserError(msg, code="instagram_token_invalid")
        if not await self._take(row):
            # another run of this step took the send between our read and now
            settled = await self._settle(row)
            if settled.status == OutboxStatus.SENT:
                return _result(settled, duplicate=True)
            msg = (
                f"Instagram {request.action.replace('_', ' ')}: another attempt of this step "
                f"is {settled.status}; retrying"
            )
            raise TransientError(msg, retry_after=1.0)
        # once Meta is called, the outcome is recorded even if the run is stopped meanwhile
        # (a cancel, a lost lease): a send must never be left behind as "sending"
        return await asyncio.shield(self._call_and_record(account, row, request, verdict, resumed))

    async def _call_and_record(
        self,
        account: InstagramAccount,
        row: OutboxMessage,
        request: ActionRequest,
        verdict: Verdict,
        resumed: bool,
    ) -> ActionResult:
        client = await self._client(account)
        try:
            response = await _call(client, request, verdict)
        except TransientError as exc:
            await self._finish(row.id, OutboxStatus.QUEUED, error=(exc.code, exc.message))
            raise
        except GraphError as exc:
            if resumed and request.action == "private_reply" and exc.subcode == 2534025:
                response = {"note": "already delivered before an interruption"}
            else:
                await self._finish(row.id, OutboxStatus.FAILED, error=(exc.code, exc.message))
                raise
        finally:
            await client.aclose()
        done = await self._finish(row.id, OutboxStatus.SENT, response=response)
        return _result(done, duplicate=False)

    async def _take(self, row: OutboxMessage) -> bool:
        """Move the row to ``sending`` only if nobody changed it since it was read: of two runs
        racing for one send, exactly one calls Meta."""
        async with self.db.sessionmaker() as session:
            taken = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == row.id,
                    OutboxMessage.status == row.status,
                    OutboxMessage.attempts == row.attempts,
                )
                .values(
                    status=OutboxStatus.SENDING,
                    attempts=OutboxMessage.attempts + 1,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return rows_touched(taken) == 1

    async def _settle(self, row: OutboxMessage) -> OutboxMessage:
        """Wait while another sender may still be calling Meta for ``row``; the row once it
        leaves ``sending``, or as it is when its sender has been silent past the request
        timeout (then it died mid-call)."""
        patience = timedelta(seconds=self.settings.request_timeout_seconds + SETTLE_MARGIN)
        while True:
            async with self.db.sessionmaker() as session:
                fresh = await session.get(OutboxMessage, row.id)
            assert fresh is not None
            if fresh.status != OutboxStatus.SENDING or utcnow() - fresh.updated_at > patience:
                return fresh
            await asyncio.sleep(SETTLE_POLL_SECONDS)

    async def _token(self, account: InstagramAccount) -> str:
        async with self.db.sessionmaker() as session:
            credential = (
                await session.get(Credential, account.credential_id)
                if account.credential_id
                else None
            )
        if credential is None:
            msg = f"Instagram account @{account.username} has no stored token; reconnect it"
            raise UserError(msg, code="instagram_token_missing")
        return str(open_credential(credential, self.keys)["access_token"])

    async def _token_invalid(self, account_id: uuid.UUID, exc: TokenInvalidError) -> None:
        async with self.db.sessionmaker() as session:
            account = await session.get(InstagramAccount, account_id)
            if account is not None:
                account.token_status = TokenStatus.INVALID
                account.last_error = exc.message
                await session.commit()

    async def _finish(
        self,
        row_id: uuid.UUID,
        status: str,
        *,
        response: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
    ) -> OutboxMessage:
        """Record what became of a send, riding out a database hiccup: a row left in
        ``sending`` would make the next attempt wait, then give the send up as unknown."""
        delays = iter(_FINISH_RETRIES)
        while True:
            try:
                return await self._finish_once(row_id, status, response=response, error=error)
            except (OperationalError, InterfaceError) as exc:
                delay = next(delays, None)
                if delay is None:
                    raise
                _log.warning("recording a send failed; retrying", error=repr(exc))
                await asyncio.sleep(delay)

    async def _finish_once(
        self,
        row_id: uuid.UUID,
        status: str,
        *,
        response: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
    ) -> OutboxMessage:
        async with self.db.sessionmaker() as session:
            row = await session.get(OutboxMessage, row_id)
            assert row is not None
            row.status = status
            if response is not None:
                row.response, row.sent_at, row.error_code, row.error_message = (
                    response,
                    utcnow(),
                    None,
                    None,
                )
            if error is not None:
                row.error_code, row.error_message = error
            await session.commit()
            await session.refresh(row)
            return row


async def _call(client: GraphClient, request: ActionRequest, verdict: Verdict) -> dict[str, Any]:
    if request.action == "reply_comment":
        return await client.reply_to_comment(request.target, request.text or "")
    if request.action == "private_reply":
        return await client.private_reply(
            request.target, request.text or "", template=_template(request)
        )
    if request.action == "hide_comment":
        return await client.hide_comment(request.target, request.hide)
    return await client.send_message(
        request.target,
        text=request.text,
        quick_replies=request.quick_replies or None,
        attachment=request.attachment,
        tag=verdict.tag,
        template=_template(request),
    )


def _template(request: ActionRequest) -> dict[str, Any] | None:
    """The request's template attachment, checked; None for a plain DM.

    Raises:
        UserError: Both buttons and cards, or a limit exceeded (the field named).
    """
    if request.buttons and request.cards:
        msg = "field 'cards': a DM carries buttons or cards, not both"
        raise UserError(msg, code="instagram_invalid_template", details={"field": "cards"})
    if request.cards:
        return generic_template(check_cards(request.cards))
    if request.buttons:
        return button_template(
            request.text or "", check_buttons(request.buttons, text=request.text)
        )
    return None


def _payload(request: ActionRequest, verdict: Verdict) -> dict[str, Any]:
    if request.action == "hide_comment":
        return {"hide": request.hide}
    payload = request.model_dump(mode="json", include={"text", "attachment"}, exclude_none=True)
    if request.quick_replies:
        payload["quick_replies"] = request.quick_replies
    if request.buttons:
        payload["buttons"] = request.buttons
    if request.cards:
        payload["cards"] = request.cards
    if verdict.tag:
        payload["tag"] = verdict.tag
    return payload


def _result(row: OutboxMessage, *, duplicate: bool) -> ActionResult:
    return ActionResult(
        status=row.status,
        ledger_id=row.id,
        idempotency_key=row.idempotency_key,
        duplicate=duplicate,
        policy_verdict=row.policy_verdict,
        policy_reason=row.policy_reason,
        scheduled_for=row.scheduled_for,
        response=row.response,
    )
