"""What the Graph API emulator knows of Facebook Login: people, their Pages (and the Instagram
accounts linked to them), granted permissions, codes, user and Page tokens, Page subscriptions."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ALL_PERMISSIONS", "FacebookState", "FbPage", "FbUser"]

#: what a person grants when the emulator's dialog is not told otherwise
ALL_PERMISSIONS = (
    "public_profile",
    "instagram_basic",
    "instagram_manage_comments",
    "instagram_manage_messages",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_metadata",
    "pages_messaging",
    "business_management",
)


@dataclass
class FbPage:
    """A Facebook Page and the Instagram professional account linked to it, if any."""

    page_id: str
    name: str
    ig_user_id: str | None = None
    username: str = ""
    tasks: list[str] = field(default_factory=lambda: ["MANAGE", "MODERATE", "MESSAGING"])


@dataclass
class FbUser:
    """A person who logs in with Facebook, the Pages they manage and what they grant."""

    user_id: str
    name: str
    pages: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=lambda: list(ALL_PERMISSIONS))


@dataclass
class _Code:
    user_id: str
    redirect_uri: str
    challenge: str | None
    method: str | None


class FacebookState:
    """Facebook Login's side of the emulator; every method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, FbUser] = {}
        self.pages: dict[str, FbPage] = {}
        self.codes: dict[str, _Code] = {}
        # token → (user id, long-lived)
        self.user_tokens: dict[str, tuple[str, bool]] = {}
        self.page_tokens: dict[str, str] = {}
        self.subscriptions: dict[str, list[str]] = {}
        # who the dialog logs in (None: the first person added); deny: the person cancels
        self.login_as: str | None = None
        self.deny = False
        # the dialogs' query strings, as received (to check what the app asked for)
        self.dialogs: list[dict[str, str]] = []

    def add_user(self, data: dict[str, Any]) -> FbUser:
        """Add (or replace) a person and their Pages: ``{user_id, name, granted?, pages: [
        {page_id, name, ig_user_id?, username?, tasks?}]}``."""
        with self.lock:
            user = FbUser(str(data["user_id"]), str(data.get("name", "Page Admin")))
            if "granted" in data:
                user.granted = [str(p) for p in data["granted"]]
            for raw in data.get("pages", []):
                page = FbPage(
                    page_id=str(raw["page_id"]),
                    name=str(raw.get("name", "My Page")),
                    ig_user_id=str(raw["ig_user_id"]) if raw.get("ig_user_id") else None,
                    username=str(raw.get("username", "")),
                )
                if "tasks" in raw:
                    page.tasks = [str(t) for t in raw["tasks"]]
                self.pages[page.page_id] = page
                user.pages.append(page.page_id)
            self.users[user.user_id] = user
            return user

    def dialog_user(self, requested: str | None) -> FbUser | None:
        with self.lock:
            user_id = requested or self.login_as or next(iter(self.users), None)
            return self.users.get(user_id or "")

    def issue_code(
        self, user_id: str, redirect_uri: str, challenge: str | None, method: str | None
    ) -> str:
        with self.lock:
            code = "AQ" + secrets.token_urlsafe(24)
            self.codes[code] = _Code(user_id, redirect_uri, challenge, method)
            return code

    def redeem_code(self, code: str, redirect_uri: str, verifier: str | None) -> str:
        """A short-lived user token for ``code``, or the reason Meta would give for refusing."""
        with self.lock:
            found = self.codes.pop(code.removesuffix("#_"), None)
            if found is None:
                msg = "This authorization code has been used."
                raise ValueError(msg)
            if found.redirect_uri != redirect_uri:
                msg = (
                    "Error validating verification code. Please make sure your redirect_uri "
                    "is identical to the one you used in the OAuth dialog request"
                )
                raise ValueError(msg)
            if found.challenge is not None:
                if not verifier:
                    msg = "Missing code_verifier for PKCE"
                    raise ValueError(msg)
                digest = hashlib.sha256(verifier.encode()).digest()
                expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if found.method == "plain":
                    expected = verifier
                if not secrets.compare_digest(expected, found.challenge):
                    msg = "Invalid code_verifier"
                    raise ValueError(msg)
            token = "EAAshort" + secrets.token_urlsafe(16)
            self.user_tokens[token] = (found.user_id, False)
            return token

    def long_lived(self, short: str) -> str:
        with self.lock:
            owner = self.user_tokens.get(short)
            if owner is None:
                msg = "Error validating access token: Session has expired."
                raise ValueError(msg)
            token = "EAAlong" + secrets.token_urlsafe(20)
            self.user_tokens[token] = (owner[0], True)
            return token

    def user_for(self, token: str | None) -> FbUser | None:
        with self.lock:
            owner = self.user_tokens.get(token or "")
            return self.users.get(owner[0]) if owner else None

    def page_for(self, token: str | None) -> FbPage | None:
        with self.lock:
            page_id = self.page_tokens.get(token or "")
            return self.pages.get(page_id) if page_id else None

    def page_token(self, page_id: str) -> str:
        with self.lock:
            token = "EAApage" + secrets.token_urlsafe(20)
            self.page_tokens[token] = page_id
            return token

    def revoke_page(self, page_id: str) -> list[str]:
        """Forget every token of a Page (a password change, a lost role); returns them."""
        with self.lock:
            gone = [t for t, p in self.page_tokens.items() if p == page_id]
            for token in gone:
                del self.page_tokens[token]
            return gone
