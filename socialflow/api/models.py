"""Every table of the API, imported in one place for Alembic and the app."""

from socialflow.api.auth.models import AccessToken, LoginAttempt, OAuthAccount, User
from socialflow.api.flows.models import Flow, FlowStatus, FlowVersion
from socialflow.api.workspaces.models import Membership, Role, Workspace
from socialflow.core.credentials import Credential

__all__ = [
    "AccessToken",
    "Credential",
    "Flow",
    "FlowStatus",
    "FlowVersion",
    "LoginAttempt",
    "Membership",
    "OAuthAccount",
    "Role",
    "User",
    "Workspace",
]
