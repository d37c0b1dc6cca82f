"""The recorded webhook payloads (see payloads/SOURCES.md) and what each must turn into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent / "payloads"
#: Not JSON and no mechanically fixed sibling: a union of every optional key, not an event.
NOT_JSON = ("dm_message_reference.json",)


def payload_file(name: str) -> Path:
    """The file to send for a payload: its ``.valid.json`` sibling when it has one."""
    path = PAYLOADS / name
    valid = path.with_name(path.name.removesuffix(".json") + ".valid.json")
    return valid if valid.exists() else path


def payload_names() -> list[str]:
    """Every payload, by its original name."""
    return sorted(
        p.name
        for p in PAYLOADS.glob("*.json")
        if not p.name.endswith(".valid.json") and p.name not in NOT_JSON
    )


# per file: the events in order, each with the fields it must have (kind first); the dedupe key
_BATCH = [
    ("mid.$cAADC6JqUd5piBUHSi1b0_yV7_q5D", "hey", None, "2017-05-04T15:03:14.827000Z"),
    ("mid.$cAADC6JqUd5piBUNlilb0_4pAIyJP", "carbon", None, "2017-05-04T15:04:57.994000Z"),
    ("mid.$cAADC6JqUd5piBUMhiFb0_3k8oII5", "ok keep going", "accept", None),
    ("mid.$cAADC6JqUd5piBUJHWFb0_0KieOC9", "ok keep going", "accept", None),
    ("mid.$cAADC6JqUd5piBUJmk1b0_0qCq5Wv", "ok keep going", "accept", None),
]
EXPECTED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "batch.json": [
        (
            f"ig:dm:214304282285452:{mid}",
            {
                "kind": "dm",
                "account_id": "214304282285452",
                "sender_id": "1028279607252642",
                "message_id": mid,
                "text": text,
                "quick_reply_payload": quick,
                "is_self": False,
                "extra": {"message": {"seq": seq}},
                **({"occurred_at": at} if at else {}),
            },
        )
        for (mid, text, quick, at), seq in zip(
            _BATCH, (158689, 158711, 158707, 158696, 158703), strict=True
        )
    ],
    "comment.json": [
        (
            "ig:comment:<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>:<COMMENT_ID>",
            {
                "kind": "comment",
                "account_id": "<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>",
                "comment_id": "<COMMENT_ID>",
                "media_id": "<MEDIA_ID>",
                "media_product_type": "<MEDIA_PRODUCT_TYPE>",
                "text": "<COMMENT_TEXT>",
                "from_id": "<INSTAGRAM_SCOPED_USER_ID>",
                "from_username": "<USERNAME>",
                "parent_id": None,
                "field": "comments",
                "is_self": False,
                "occurred_at": None,
            },
        )
    ],
    "comment_fb_login.json": [
        (
            "ig:comment:<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>:<COMMENT_ID>",
            {
                "kind": "comment",
                "comment_id": "<COMMENT_ID>",
                "parent_id": "<PARENT_COMMENT_ID>",
                "text": "<TEXT_ID>",
                "from_id": "<INSTAGRAM_USER_SCOPED_ID>",
                "from_username": "<INSTAGRAM_USER_USERNAME>",
                "media_id": "<MEDIA_ID>",
                "ad_id": "<AD_ID>",
                "ad_title": "<AD_TITLE_ID>",
                "original_media_id": "<ORIGINAL_MEDIA_ID>",
                "is_self": False,
            },
        )
    ],
    "comment_self_changes.json": [
        (
            "ig:comment:<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>:<COMMENT_ID>",
            {
                "kind": "comment",
                "comment_id": "<COMMENT_ID>",
                "from_id": "<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>",
                "is_self": True,
                "extra": {"from": {"self_ig_scoped_id": "<YOUR_APP_USERS_INSTAGRAM_SCOPED_ID>"}},
            },
        )
    ],
    "dashboard_test_messages.json": [
        (
            "ig:dm:23245:random_mid",
            {
                "kind": "dm",
                "is_test": True,
                "entry_id": "0",
                "field": "messages",
                "message_id": "random_mid",
                "text": "random_text",
                "sender_id": "12334",
                "occurred_at": "2018-05-27T22:23:44Z",
            },
        )
    ],
    "dm_attachment.json": [
        (
            "ig:dm:<PAGE_ID>:mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c",
            {
                "kind": "dm",
                "account_id": "<PAGE_ID>",
                "sender_id": "<PSID>",
                "text": None,
                "attachments": [
                    {"type": "image", "url": "<IMAGE_URL>", "payload": {"url": "<IMAGE_URL>"}}
                ],
                "occurred_at": "2018-02-12T23:46:35.308000Z",
            },
        )
    ],
    "dm_echo.json": [
        (
            "ig:echo:<YOUR_APP_USERS_IG_USER_ID>:<MESSAGE_ID>",
            {
                "kind": "echo",
                "is_self": True,
                "account_id": "<YOUR_APP_USERS_IG_USER_ID>",
                "sender_id": "<YOUR_APP_USERS_IG_USER_ID>",
                "recipient_id": "<YOUR_APP_USERS_INSTAGRAM_SCOPED_ID>",
                "text": "<MESSAGE_TEXT>",
            },
        )
    ],
    "dm_quick_reply.json": [
        (
            "ig:dm:<IGID>:<MESSAGE_ID>",
            {
                "kind": "dm",
                "account_id": "<IGID>",
                "sender_id": "<IGSID>",
                "quick_reply_payload": "<POSTBACK_OF_BUTTON_SELECTED>",
                "text": "<PHONE_NUMBER_EMAIL_OR_TEXT_OF_BUTTON_SELECTED>",
            },
        )
    ],
    "dm_share_ig_post.json": [
        (
            "ig:dm:{PAGE_ID}:{MESSAGE_ID}",
            {
                "kind": "dm",
                "account_id": "{PAGE_ID}",
                "shared_post": {
                    "media_id": "18139494541428835",
                    "url": "https://lookaside.fbsbx.com/ig_messaging_cdn/"
                    "?asset_id=18139494541428835={SIGNATURE}",
                    "title": "Build a workspace that attracts talent and supports your team "
                    "with solutions made for growing businesses.",
                },
                "occurred_at": "2025-10-24T06:28:14.014000Z",
            },
        )
    ],
    "dm_text.json": [
        (
            "ig:dm:<RECIPIENT_ID>:<MESSAGE_ID>",
            {
                "kind": "dm",
                "account_id": "<RECIPIENT_ID>",
                "entry_id": "<YOUR_APP_USERS_INSTAGRAM_USER_ID>",
                "sender_id": "<SENDER_ID>",
                "text": "Hello",
                "is_self": False,
                "is_story_reply": False,
            },
        )
    ],
    "dm_unsend.json": [
        (
            "ig:unsend:chatwoot-app-user-id-1:message-id-to-delete",
            {
                "kind": "unsend",
                "message_id": "message-id-to-delete",
                "sender_id": "Sender-id-1",
                "account_id": "chatwoot-app-user-id-1",
                "occurred_at": "2021-09-08T06:34:04Z",
            },
        )
    ],
    "live_comment.json": [
        (
            "ig:live_comment:<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>:<COMMENT_ID>",
            {
                "kind": "live_comment",
                "comment_id": "<COMMENT_ID>",
                "field": "live_comments",
                "text": "<TEXT_ID>",
                "parent_id": "<PARENT_COMMENT_ID>",
            },
        )
    ],
    "mention.json": [
        (
            "ig:mention:17841405726653026:17918195224117851:17894227972186120",
            {
                "kind": "mention",
                "account_id": "17841405726653026",
                "comment_id": "17894227972186120",
                "media_id": "17918195224117851",
                "mentioned_in": "comment",
                "occurred_at": "2018-03-09T19:16:08Z",
            },
        )
    ],
    "mention_media.json": [
        (
            "ig:mention:17841405726653026:17918195224117851:caption",
            {
                "kind": "mention",
                "comment_id": None,
                "media_id": "17918195224117851",
                "mentioned_in": "caption",
            },
        )
    ],
    "message_edit.json": [
        (
            "ig:edit:<YOUR_APP_USERS_INSTAGRAM_USER_ID>:<MESSAGE_ID>:<NUMBER_OF_TIMES_MESSAGE_IS_EDITED>",
            {
                "kind": "edit",
                "message_id": "<MESSAGE_ID>",
                "text": "<USER_EDITED_MESSAGE>",
                "num_edit": None,
                "extra": {"num_edit": "<NUMBER_OF_TIMES_MESSAGE_IS_EDITED>"},
            },
        )
    ],
    "postback.json": [
        (
            "ig:postback:<YOUR_APP_USERS_INSTAGRAM_USER_ID>:<MESSAGE_ID>",
            {
                "kind": "postback",
                "account_id": "<YOUR_APP_USERS_INSTAGRAM_USER_ID>",
                "message_id": "<MESSAGE_ID>",
                "title": "<USER_SELECTED_ICEBREAKER_OPTION_OR_CTA_BUTTON>",
                "payload": "<OPTION_OR_BUTTON_PAYLOAD>",
                "is_self": False,
            },
        )
    ],
    "reaction.json": [
        (
            "ig:reaction:<YOUR_APP_USERS_INSTAGRAM_USER_ID>:<MESSAGE_ID>:<INSTAGRAM_SCOPED_ID>:react:\u2764\ufe0f:1569262485349",
            {
                "kind": "reaction",
                "message_id": "<MESSAGE_ID>",
                "sender_id": "<INSTAGRAM_SCOPED_ID>",
                "action": "react",
                "reaction": "love",
                "emoji": "\u2764\ufe0f",
                "occurred_at": "2019-09-23T18:14:45.349000Z",
            },
        )
    ],
    "referral.json": [
        (
            "ig:referral:<YOUR_APP_USERS_INSTAGRAM_USER_ID>:<INSTAGRAM_SCOPED_ID>:1502905976377:<IGME_LINK_REF_PARAMETER_VALUE>",
            {
                "kind": "referral",
                "ref": "<IGME_LINK_REF_PARAMETER_VALUE>",
                "source": "<IGME_SOURCE_LINK>",
                "type": "OPEN_THREAD",
                "is_self": False,
            },
        )
    ],
    "seen.json": [
        (
            "ig:seen:<YOUR_APP_USERS_INSTAGRAM_USER_ID>:<MESSAGE_ID>:<INSTAGRAM_SCOPED_ID>",
            {"kind": "seen", "message_id": "<MESSAGE_ID>", "sender_id": "<INSTAGRAM_SCOPED_ID>"},
        )
    ],
    "standby.json": [
        (
            "ig:dm:chatwoot-app-user-id-1:message-id-1",
            {
                "kind": "dm",
                "standby": True,
                "text": "This is the first standby message from the customer, after 24 hours.",
            },
        )
    ],
    "story_mention.json": [
        (
            "ig:dm:<IGID>:<MESSAGE_ID>",
            {
                "kind": "dm",
                "is_story_mention": True,
                "is_story_reply": False,
                "attachments": [
                    {"type": "story_mention", "url": "<CDN_URL>", "payload": {"url": "<CDN_URL>"}}
                ],
            },
        )
    ],
    # Meta's sample sets every flag: is_deleted wins (the message is gone), is_echo marks it
    # as the account's own, and what it said is kept in extra
    "story_reply.json": [
        (
            "ig:unsend:<SENDER_ID>:<MESSAGE_ID>",
            {
                "kind": "unsend",
                "is_self": True,
                "account_id": "<SENDER_ID>",
                "extra": {
                    "text": "<MESSAGE_TEXT>",
                    "reply_to": {"story": {"url": "<CDN_URL_FOR_THE_STORY>", "id": "<STORY_ID>"}},
                },
            },
        )
    ],
    "story_reply_chatwoot.json": [
        (
            "ig:dm:chatwoot-app-user-id-1:message-id-1",
            {
                "kind": "dm",
                "is_story_reply": True,
                "text": "This is the story reply",
                "reply_to": {
                    "mid": None,
                    "story": {
                        "id": "chatwoot-app-user-id-1",
                        "url": "https://chatwoot-assets.local/sample.png",
                    },
                },
            },
        )
    ],
}


def assert_event(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Every expected field has the expected value (the event may have more)."""
    for key, value in expected.items():
        assert actual.get(key) == value, f"{where}: {key} is {actual.get(key)!r}, not {value!r}"
