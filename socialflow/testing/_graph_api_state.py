"""State and rules of the Graph API emulator: accounts, comments, conversations, failures."""

from __future__ import annotations

import itertools
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from socialflow.testing._facebook_state import FacebookState
from socialflow.testing._graph_api_publishing import Publishing

__all__ = ["EmulatorState", "GraphFault", "Reply"]

DAY = 86_400.0
_ids = itertools.count(17_900_000_000_000_000)


def new_id() -> str:
    """A fresh numeric id in Meta's style."""
    return str(next(_ids))


@dataclass
class Reply:
    """An HTTP answer: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class GraphFault(Exception):
    """A Meta-shaped error answer."""

    def __init__(self, code: int, message: str, *, subcode: int | None = None, status: int = 400):
        super().__init__(message)
        self.code, self.subcode, self.status = code, subcode, status

    def reply(self, headers: dict[str, str] | None = None) -> Reply:
        error: dict[str, Any] = {
            "message": str(self),
            "type": "OAuthException",
            "code": self.code,
            "fbtrace_id": secrets.token_urlsafe(8),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return Reply(self.status, {"error": error}, headers or {})


@dataclass
class _Account:
    ig_user_id: str
    username: str
    tokens: set[str] = field(default_factory=set)
    subscribed: list[str] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    #: messenger_profile fields as set (ice_breakers, persistent_menu)
    profile: dict[str, Any] = field(default_factory=dict)


class EmulatorState:
    """Everything the emulator knows; every method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything: accounts, objects, recorded calls, pending failures."""
        with self.lock:
            self.accounts: dict[str, _Account] = {}
            self.comments: dict[str, dict[str, Any]] = {}
            self.media: dict[str, dict[str, Any]] = {}
            self.users: dict[str, dict[str, Any]] = {}
            # (account, igsid) → time of the user's last message
            self.conversations: dict[tuple[str, str], float] = {}
            self.private_replied: set[str] = set()
            self.faults: list[dict[str, Any]] = []
            self.calls: list[dict[str, Any]] = []
            self.attempts = 0
            self.limit: tuple[int, float] | None = None
            self.codes: dict[str, tuple[str, str]] = {}
            self.long_lived: dict[str, float] = {}
            # answer the code exchange and /me as {"data": [{…}]}, the documented shape (SPEC
            # U9), instead of the flat object seen in the wild
            self.data_list_answers = False
            # containers, media_publish, quota, published media and insights
            self.publishing = Publishing(new_id)
            # Facebook Login: people, Pages, codes, user and Page tokens
            self.facebook = FacebookState()

    # seeding, used by the control API

    def add_account(self, ig_user_id: str, username: str, token: str) -> None:
        with self.lock:
            account = self.accounts.setdefault(ig_user_id, _Account(ig_user_id, username))
            account.tokens.add(token)

    def add_comment(self, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            comment_id = str(data.get("id") or new_id())
            created = time.time() - float(data.get("age_seconds", 0))
            comment = {
                "id": comment_id,
                "text": data.get("text", ""),
                "timestamp": _iso(created),
                "created": created,
                "from": {
                    "id": str(data.get("from_id", "1000")),
                    "username": data.get("from_username", "someone"),
                },
                "media": {"id": str(data.get("media_id", "1790000"))},
                "hidden": False,
                "account": str(data.get("account", "")),
            }
            self.comments[comment_id] = comment
            return comment

    def add_message(self, account: str, sender_id: str, age_seconds: float = 0.0) -> None:
        with self.lock:
            self.conversations[(account, sender_id)] = time.time() - age_seconds
            self.users.setdefault(sender_id, {"name": "Test User", "username": f"user{sender_id}"})

    def add_fault(self, data: dict[str, Any]) -> None:
        with self.lock:
            for _ in range(int(data.get("count", 1))):
                self.faults.append(dict(data))

    # rules

    def account_for(self, token: str | None) -> _Account:
        with self.lock:
            for account in self.accounts.values():
                if token and token in account.tokens:
                    return account
        raise GraphFault(190, "Error validating access token: Session has expired.", subcode=463)

    def take_fault(self, path: str) -> dict[str, Any] | None:
        with self.lock:
            self.attempts += 1
            for i, fault in enumerate(self.faults):
                if fault.get("path_contains", "") in path:
                    return self.faults.pop(i)
        return None

    def usage(self, account: _Account | None) -> dict[str, str]:
        """Usage headers for an answer to ``account``."""
        if account is None:
            return {}
        with self.lock:
            limit, window = self.limit or (200, 3600.0)
            now = time.time()
            account.calls = [t for t in account.calls if t > now - window]
            pct = min(100, math.floor(100 * len(account.calls) / limit))
            regain = 0
            if len(account.calls) >= limit:
                regain = math.ceil((account.calls[0] + window - now) / 60)
            usage = {"call_count": pct, "total_cputime": pct // 2, "total_time": pct // 2}
            buc = {
                account.ig_user_id: [
                    {"type": "instagram", **usage, "estimated_time_to_regain_access": regain}
                ]
            }
            return {"X-App-Usage": json.dumps(usage), "X-Business-Use-Case-Usage": json.dumps(buc)}

    def count_call(self, account: _Account) -> None:
        """Count a call against the rate limit, refusing it past the limit (code 80002)."""
        with self.lock:
            if self.limit is not None:
                limit, window = self.limit
                now = time.time()
                account.calls = [t for t in account.calls if t > now - window]
                if len(account.calls) >= limit:
                    raise GraphFault(
                        80002, "There have been too many calls to this Instagram account."
                    )
            account.calls.append(time.time())

    def record(
        self, method: str, path: str, account: str, params: dict[str, Any], body: Any
    ) -> None:
        with self.lock:
            self.calls.append(
                {
                    "method": method,
                    "path": path,
                    "account": account,
                    "params": params,
                    "body": body,
                    "at": time.time(),
                }
            )

    def private_reply(self, account: _Account, comment_id: str) -> None:
        with self.lock:
            comment = self.comments.get(comment_id)
            if comment is None:
                raise GraphFault(100, f"Object with ID '{comment_id}' does not exist", subcode=33)
            if comment_id in self.private_replied or time.time() - comment["created"] > 7 * DAY:
                raise GraphFault(100, "The comment is invalid for a private reply", subcode=2534025)
            self.private_replied.add(comment_id)

    def profile(self, account: _Account, igsid: str) -> dict[str, Any]:
        """The user profile API (SPEC 5.6): answered only for a person who messaged the
        account; anyone else is refused as Meta refuses them."""
        with self.lock:
            if (account.ig_user_id, igsid) not in self.conversations:
                raise GraphFault(100, "User consent is required to access user profile.")
            user = self.users.get(igsid, {})
            return {
                "id": igsid,
                "name": user.get("name", "Test User"),
                "username": user.get("username", f"user{igsid}"),
                "profile_pic": f"https://scontent.example/v/{igsid}.jpg",
                "follower_count": 12,
                "is_user_follow_business": False,
                "is_business_follow_user": False,
            }

    def check_window(self, account: _Account, recipient: str, tag: str | None) -> None:
        with self.lock:
            last = self.conversations.get((account.ig_user_id, recipient))
            limit = 7 * DAY if tag == "HUMAN_AGENT" else DAY
            if last is None or time.time() - last > limit:
                raise GraphFault(
                    10, "This message is sent outside of allowed window.", subcode=2534022
                )

    # OAuth

    def issue_code(self, ig_user_id: str, username: str) -> str:
        with self.lock:
            code = secrets.token_urlsafe(16)
            self.codes[code] = (ig_user_id, username)
            return code

    def redeem_code(self, code: str) -> tuple[str, str]:
        with self.lock:
            found = self.codes.pop(code.removesuffix("#_"), None)
            if found is None:
                raise GraphFault(400, "Matching code was not found or was already used")
            ig_user_id, username = found
            token = "IGQ-short-" + secrets.token_urlsafe(12)
            self.add_account(ig_user_id, username, token)
            return ig_user_id, token

    def long_lived_token(self, short: str) -> str:
        with self.lock:
            account = self.account_for(short)
            token = "IGQ-long-" + secrets.token_urlsafe(16)
            account.tokens.add(token)
            self.long_lived[token] = time.time()
            return token


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))
