"""The demo workspace `socialflow up` seeds on a fresh installation, so a newcomer sees
``socialflow simulate comment "how much is it?"`` → a run → a ledger entry within seconds.

Seeding is idempotent: it creates what is missing (a user, a workspace, a sandboxed Instagram
account, one active flow) and leaves everything that exists alone. The account is in sandbox
mode, so nothing is ever sent to Instagram from it. The demo user's password is generated when
the user is created (``DemoWorkspace.password``; `socialflow up` prints it): a published
password would let anyone who reaches the stack sign in.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi_users.exceptions import UserAlreadyExists
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.auth.email import LogEmailSender
from socialflow.api.auth.models import OAuthAccount, User
from socialflow.api.auth.passwords import password_problems
from socialflow.api.auth.schemas import UserCreate
from socialflow.api.auth.sessions import revoke_tokens
from socialflow.api.auth.users import UserManager
from socialflow.api.flows import versions
from socialflow.api.flows.models import Flow, FlowStatus
from socialflow.api.workspaces.models import Membership, Role, Workspace
from socialflow.core.credentials import key_wrapper
from socialflow.core.db import Database
from socialflow.core.settings import Settings
from socialflow.instagram import DEMO_ACCOUNT_ID, InstagramAccount, Token, store_token
from socialflow.nodes import NodeRegistry

__all__ = ["DEMO_EMAIL", "DEMO_FLOW_NAME", "DemoWorkspace", "generate_password", "seed_demo"]

DEMO_EMAIL = "demo@socialflow.example"
# the constant earlier versions gave every demo user, published in their README: a demo user
# still signing in with it gets a generated password at the next start
_RETIRED_PASSWORD = "sandbox-only-123"
DEMO_WORKSPACE = "Demo shop"
DEMO_FLOW_NAME = "Reply to price questions"

# comment asking for the price → public reply (sandboxed: recorded in the ledger, never sent)
DEMO_GRAPH: dict[str, Any] = {
    "nodes": [
        {
            "id": "comment",
            "kind": "instagram.comment",
            "label": "Comment asks for the price",
            "config": {"keywords": ["price", "how much", "cost"], "match": "any"},
            "position": {"x": 0, "y": 0},
        },
        {
            "id": "reply",
            "kind": "instagram.reply_comment",
            "label": "Reply with the price list",
            "config": {
                "message": (
                    "Hi @{{ trigger.from_username }}! Our prices are in the link in our bio. "
                    "Send us a DM for a quote."
                )
            },
            "position": {"x": 320, "y": 0},
        },
    ],
    "edges": [{"source": "comment", "source_port": "event", "target": "reply"}],
}


@dataclass(frozen=True)
class DemoWorkspace:
    """What the demo consists of."""

    user_id: uuid.UUID
    workspace_id: uuid.UUID
    flow_id: uuid.UUID
    account_id: str
    created: bool
    #: the demo user's password when this call generated it (a new user, or one that still had
    #: the retired published password); None when the existing password was left alone
    password: str | None = None


def generate_password() -> str:
    """A random password (16 URL-safe characters, 96 bits) that passes the password rules."""
    while True:
        candidate = secrets.token_urlsafe(12)
        if not password_problems(candidate, email=DEMO_EMAIL):
            return candidate


async def seed_demo(settings: Settings, db: Database, registry: NodeRegistry) -> DemoWorkspace:
    """Create the demo user, workspace, sandboxed account and active flow where missing."""
    async with db.sessionmaker() as session:
        manager = UserManager(
            SQLAlchemyUserDatabase(session, User, OAuthAccount), settings, LogEmailSender()
        )
        user = await _user(session)
        created = user is None
        password: str | None = None
        if user is None:
            password = generate_password()
            try:
                user = await manager.create(
                    UserCreate(email=DEMO_EMAIL, password=password, is_verified=True)
                )
            except UserAlreadyExists:  # a concurrent start created it (and printed its password)
                user, password = await _user(session), None
            assert user is not None
        elif manager.password_helper.verify_and_update(_RETIRED_PASSWORD, user.hashed_password)[0]:
            password = generate_password()
            await manager.user_db.update(
                user, {"hashed_password": manager.password_helper.hash(password)}
            )
            await revoke_tokens(session, user.id)
        workspace = await session.scalar(
            select(Workspace)
            .join(Membership, Membership.workspace_id == Workspace.id)
            .where(Membership.user_id == user.id, Workspace.name == DEMO_WORKSPACE)
        )
        if workspace is None:
            workspace = Workspace(name=DEMO_WORKSPACE, created_by=user.id)
            session.add(workspace)
            await session.flush()
            session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=Role.ADMIN))
            await session.commit()
        account = await session.scalar(
            select(InstagramAccount).where(
                InstagramAccount.workspace_id == workspace.id,
                InstagramAccount.ig_user_id == DEMO_ACCOUNT_ID,
            )
        )
        if account is None:
            account = InstagramAccount(
                workspace_id=workspace.id,
                ig_user_id=DEMO_ACCOUNT_ID,
                username="demo.shop",
                subscribed_fields=[],
            )
            session.add(account)
            await session.flush()
            # a placeholder token: the account is in sandbox mode and never calls Meta
            await store_token(
                session, account, Token("demo-token-sandbox-only"), key_wrapper(settings)
            )
            await session.commit()
        flow = await session.scalar(
            select(Flow).where(Flow.workspace_id == workspace.id, Flow.name == DEMO_FLOW_NAME)
        )
        if flow is None:
            flow = Flow(
                workspace_id=workspace.id,
                name=DEMO_FLOW_NAME,
                description="Replies publicly to comments that ask for the price.",
                status=FlowStatus.DRAFT,
                draft=DEMO_GRAPH,
                created_by=user.id,
            )
            session.add(flow)
            await session.commit()
            await versions.publish(
                flow,
                "demo",
                user_id=user.id,
                registry=registry,
                settings=settings,
                session=session,
            )
        return DemoWorkspace(
            user.id, workspace.id, flow.id, DEMO_ACCOUNT_ID, created, password=password
        )


async def _user(session: AsyncSession) -> User | None:
    found: User | None = await session.scalar(
        select(User).where(User.email == DEMO_EMAIL)  # type: ignore[arg-type]  # fastapi-users column
    )
    return found
