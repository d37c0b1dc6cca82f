"""X-Hub-Signature checks over raw bytes, secrets in turn, SHA-1 fallback, the handshake."""

from __future__ import annotations

import json

import pytest

from socialflow.core.settings import Settings
from socialflow.instagram import (
    check_challenge,
    sign_sha1,
    sign_sha256,
    verify_signature,
    webhook_secrets,
)

# SPEC §2's test vector: the body exactly as Meta sends it, non-ASCII escaped as \uXXXX
SECRET = b"test_app_secret"
BODY = (
    b'{"object":"instagram","entry":[{"id":"17841400000000000","time":1700000000000,'
    b'"messaging":[{"sender":{"id":"1234567890"},"recipient":{"id":"17841400000000000"},'
    b'"timestamp":1700000000000,"message":{"mid":"aWdfZAG1","text":"\\u00e4\\u00f6\\u00e5"}}]}]}'
)
SHA256 = "sha256=62e53736d6e5739a68a58731e4a98c9147710aa7f72726ab3665654d696cceb3"
SHA1 = "sha1=1ae489c85fd29743347a24676893d800c7a88242"


def test_the_published_vector() -> None:
    assert sign_sha256(SECRET, BODY) == SHA256
    assert sign_sha1(SECRET, BODY) == SHA1
    assert verify_signature(BODY, {"X-Hub-Signature-256": SHA256}, [SECRET])


def test_escaped_body_verifies_against_raw_bytes_but_reserialised_json_does_not() -> None:
    assert "\\u00e4" in BODY.decode() and "ä" not in BODY.decode()
    reserialised = json.dumps(json.loads(BODY), ensure_ascii=False, separators=(",", ":"))
    assert "äöå" in reserialised
    assert verify_signature(BODY, {"X-Hub-Signature-256": SHA256}, [SECRET]).ok
    check = verify_signature(reserialised.encode(), {"X-Hub-Signature-256": SHA256}, [SECRET])
    assert not check.ok and "does not match" in check.reason
    assert sign_sha256(SECRET, reserialised.encode()).startswith("sha256=02e4f8c0")


def test_each_configured_secret_is_tried() -> None:
    headers = {"x-hub-signature-256": SHA256}
    assert verify_signature(BODY, headers, [b"meta-app-secret", SECRET])
    assert verify_signature(BODY, headers, [SECRET, b"instagram-app-secret"])
    assert not verify_signature(BODY, headers, [b"meta-app-secret", b"instagram-app-secret"])


def test_upper_case_hex_is_accepted() -> None:
    upper = "sha256=" + SHA256.removeprefix("sha256=").upper()
    assert verify_signature(BODY, {"X-Hub-Signature-256": upper}, [SECRET])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": "sha256="},
        {"X-Hub-Signature-256": SHA256.removeprefix("sha256=")},
        {"X-Hub-Signature-256": SHA256[:-2]},
        {"X-Hub-Signature-256": "sha1=" + SHA256.removeprefix("sha256=")},
        {"X-Hub-Signature": SHA1},  # SHA-1 not allowed by default
    ],
)
def test_missing_or_wrong_signatures_fail(headers: dict[str, str]) -> None:
    assert not verify_signature(BODY, headers, [SECRET])


def test_sha1_only_when_allowed_and_the_256_header_is_absent() -> None:
    assert verify_signature(BODY, {"X-Hub-Signature": SHA1}, [SECRET], allow_sha1=True)
    check = verify_signature(BODY, {"X-Hub-Signature": SHA1}, [SECRET], allow_sha1=True)
    assert check.algorithm == "sha1"
    # a present but wrong SHA-256 header is not rescued by a right SHA-1 one
    both = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-Hub-Signature": SHA1}
    assert not verify_signature(BODY, both, [SECRET], allow_sha1=True)


def test_no_secret_refuses_everything() -> None:
    check = verify_signature(BODY, {"X-Hub-Signature-256": SHA256}, [])
    assert not check and "SOCIALFLOW_INSTAGRAM_APP_SECRETS" in check.reason


def test_secrets_come_from_settings_or_a_development_default() -> None:
    configured = Settings(instagram={"app_secrets": ["meta", "insta"]}, environment="test")
    assert webhook_secrets(configured) == [b"meta", b"insta"]
    assert webhook_secrets(Settings(environment="test")) == []
    dev = webhook_secrets(Settings(environment="development", secret_key="k" * 32))
    assert len(dev) == 1 and len(dev[0]) == 64
    other = webhook_secrets(Settings(environment="development", secret_key="j" * 32))
    assert dev != other


GOOD = {"hub.mode": "subscribe", "hub.verify_token": "meatyhamhock", "hub.challenge": "1158201444"}


def test_handshake_echoes_the_challenge() -> None:
    assert check_challenge(GOOD, "meatyhamhock") == ("1158201444", "")
    # PHP-style front ends turn the dots into underscores
    php = {k.replace(".", "_"): v for k, v in GOOD.items()}
    assert check_challenge(php, "meatyhamhock") == ("1158201444", "")


@pytest.mark.parametrize(
    ("params", "token", "reason"),
    [
        ({**GOOD, "hub.verify_token": "wrong"}, "meatyhamhock", "does not match"),
        ({**GOOD, "hub.mode": "unsubscribe"}, "meatyhamhock", "hub.mode"),
        ({k: v for k, v in GOOD.items() if k != "hub.mode"}, "meatyhamhock", "hub.mode"),
        (GOOD, None, "no verify token"),
        ({**GOOD, "hub.challenge": "<script>alert(1)</script>"}, "meatyhamhock", "hub.challenge"),
        ({**GOOD, "hub.challenge": "12\r\nSet-Cookie: x=1"}, "meatyhamhock", "hub.challenge"),
        ({**GOOD, "hub.challenge": ""}, "meatyhamhock", "hub.challenge"),
        ({**GOOD, "hub.challenge": "9" * 257}, "meatyhamhock", "hub.challenge"),
    ],
)
def test_handshake_refusals(params: dict[str, str], token: str | None, reason: str) -> None:
    challenge, why = check_challenge(params, token)
    assert challenge is None and reason in why
