"""Instagram: webhook verification and parsing, the Graph API client, messaging policy and the
send ledger.

Each public name loads its module on first use (PEP 562), so a command that only signs a
webhook (``socialflow simulate``) loads neither SQLAlchemy nor the Graph API client. The ORM
models (``InstagramAccount``, ``OutboxMessage``) register their tables when first named.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from socialflow.instagram._errors import GraphError, TokenInvalidError, TransientGraphError
    from socialflow.instagram._events import (
        EVENT_KINDS,
        AnyInstagramEvent,
        Attachment,
        CommentEvent,
        DMEvent,
        EchoEvent,
        EditEvent,
        InstagramEvent,
        LiveCommentEvent,
        MentionEvent,
        PostbackEvent,
        ReactionEvent,
        ReferralEvent,
        ReplyTo,
        SeenEvent,
        SharedPost,
        StoryRef,
        UnknownEvent,
        UnsendEvent,
        conversation_key,
        mentions_username,
        parse_event,
    )
    from socialflow.instagram._facebook_login import (
        connect_facebook,
        facebook_authorize_url,
        pkce_pair,
    )
    from socialflow.instagram._gateway import ActionRequest, ActionResult, InstagramGateway
    from socialflow.instagram._ledger import list_query
    from socialflow.instagram._models import (
        AccountMode,
        ConnectAttempt,
        ConnectStatus,
        InstagramAccount,
        LoginKind,
        OutboxMessage,
        OutboxStatus,
        TokenStatus,
    )
    from socialflow.instagram._oauth import Token, authorize_url, connect_account, store_token
    from socialflow.instagram._parse import (
        MalformedWebhookError,
        ParsedEvent,
        parse_body,
        parse_payload,
    )
    from socialflow.instagram._policy import Verdict, check_action
    from socialflow.instagram._profile import (
        IceBreaker,
        MenuItem,
        MessengerProfile,
        profile_body,
        read_profile,
    )
    from socialflow.instagram._signature import (
        SHA1_HEADER,
        SHA256_HEADER,
        SignatureCheck,
        check_challenge,
        sign_sha1,
        sign_sha256,
        verify_signature,
        webhook_secrets,
    )
    from socialflow.instagram._simulate import (
        DEMO_ACCOUNT_ID,
        Delivery,
        SimulatedKind,
        build_comment,
        build_dm,
        build_mention,
        build_payload,
        build_postback,
        encode_body,
        post_signed,
        post_signed_sync,
        signed_headers,
    )
    from socialflow.instagram._templates import Button, Card, check_buttons, check_cards
    from socialflow.instagram.client import GraphClient

#: the private module (of this package) that defines each public name
_MODULES: dict[str, str] = {
    "GraphError": "_errors",
    "TokenInvalidError": "_errors",
    "TransientGraphError": "_errors",
    "AnyInstagramEvent": "_events",
    "Attachment": "_events",
    "CommentEvent": "_events",
    "DMEvent": "_events",
    "EVENT_KINDS": "_events",
    "EchoEvent": "_events",
    "EditEvent": "_events",
    "InstagramEvent": "_events",
    "LiveCommentEvent": "_events",
    "MentionEvent": "_events",
    "PostbackEvent": "_events",
    "ReactionEvent": "_events",
    "ReferralEvent": "_events",
    "ReplyTo": "_events",
    "SeenEvent": "_events",
    "SharedPost": "_events",
    "StoryRef": "_events",
    "UnknownEvent": "_events",
    "UnsendEvent": "_events",
    "conversation_key": "_events",
    "mentions_username": "_events",
    "parse_event": "_events",
    "connect_facebook": "_facebook_login",
    "facebook_authorize_url": "_facebook_login",
    "pkce_pair": "_facebook_login",
    "ActionRequest": "_gateway",
    "ActionResult": "_gateway",
    "InstagramGateway": "_gateway",
    "list_query": "_ledger",
    "AccountMode": "_models",
    "ConnectAttempt": "_models",
    "ConnectStatus": "_models",
    "InstagramAccount": "_models",
    "LoginKind": "_models",
    "OutboxMessage": "_models",
    "OutboxStatus": "_models",
    "TokenStatus": "_models",
    "Token": "_oauth",
    "authorize_url": "_oauth",
    "connect_account": "_oauth",
    "store_token": "_oauth",
    "MalformedWebhookError": "_parse",
    "ParsedEvent": "_parse",
    "parse_body": "_parse",
    "parse_payload": "_parse",
    "Verdict": "_policy",
    "check_action": "_policy",
    "SHA1_HEADER": "_signature",
    "SHA256_HEADER": "_signature",
    "SignatureCheck": "_signature",
    "check_challenge": "_signature",
    "sign_sha1": "_signature",
    "sign_sha256": "_signature",
    "verify_signature": "_signature",
    "webhook_secrets": "_signature",
    "DEMO_ACCOUNT_ID": "_simulate",
    "SimulatedKind": "_simulate",
    "build_comment": "_simulate",
    "build_dm": "_simulate",
    "build_mention": "_simulate",
    "build_payload": "_simulate",
    "build_postback": "_simulate",
    "encode_body": "_simulate",
    "post_signed": "_simulate",
    "post_signed_sync": "_simulate",
    "Delivery": "_simulate",
    "signed_headers": "_simulate",
    "IceBreaker": "_profile",
    "MenuItem": "_profile",
    "MessengerProfile": "_profile",
    "profile_body": "_profile",
    "read_profile": "_profile",
    "Button": "_templates",
    "Card": "_templates",
    "check_buttons": "_templates",
    "check_cards": "_templates",
    "GraphClient": "client",
}

__all__ = [
    "DEMO_ACCOUNT_ID",
    "EVENT_KINDS",
    "SHA1_HEADER",
    "SHA256_HEADER",
    "AccountMode",
    "ActionRequest",
    "ActionResult",
    "AnyInstagramEvent",
    "Attachment",
    "Button",
    "Card",
    "CommentEvent",
    "ConnectAttempt",
    "ConnectStatus",
    "DMEvent",
    "Delivery",
    "EchoEvent",
    "EditEvent",
    "GraphClient",
    "GraphError",
    "IceBreaker",
    "InstagramAccount",
    "InstagramEvent",
    "InstagramGateway",
    "LiveCommentEvent",
    "LoginKind",
    "MalformedWebhookError",
    "MentionEvent",
    "MenuItem",
    "MessengerProfile",
    "OutboxMessage",
    "OutboxStatus",
    "ParsedEvent",
    "PostbackEvent",
    "ReactionEvent",
    "ReferralEvent",
    "ReplyTo",
    "SeenEvent",
    "SharedPost",
    "SignatureCheck",
    "SimulatedKind",
    "StoryRef",
    "Token",
    "TokenInvalidError",
    "TokenStatus",
    "TransientGraphError",
    "UnknownEvent",
    "UnsendEvent",
    "Verdict",
    "authorize_url",
    "build_comment",
    "build_dm",
    "build_mention",
    "build_payload",
    "build_postback",
    "check_action",
    "check_buttons",
    "check_cards",
    "check_challenge",
    "connect_account",
    "connect_facebook",
    "conversation_key",
    "encode_body",
    "facebook_authorize_url",
    "list_query",
    "mentions_username",
    "parse_body",
    "parse_event",
    "parse_payload",
    "pkce_pair",
    "post_signed",
    "post_signed_sync",
    "profile_body",
    "read_profile",
    "sign_sha1",
    "sign_sha256",
    "signed_headers",
    "store_token",
    "verify_signature",
    "webhook_secrets",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups find it without calling this again
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
