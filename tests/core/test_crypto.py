"""Envelope encryption: secrets open only with the right master key, data and context."""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import replace

import pytest
from pydantic import ValidationError as PydanticValidationError

from socialflow.core.credentials import (
    CREDENTIAL_KINDS,
    SECRET_MODELS,
    Credential,
    hint_for,
    key_wrapper,
    open_credential,
    parse_secret,
    seal_credential,
)
from socialflow.core.crypto import DecryptionError, LocalKeyWrapper, open_secret, rewrap, seal
from socialflow.core.errors import UserError
from socialflow.core.settings import Settings


def master_key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


KEY_A = master_key("a")
KEY_B = master_key("b")
PLAINTEXT = b'{"api_key":"sk-test-0123456789abcdef"}'


def flip(data: bytes, index: int = -1) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def test_seal_and_open_round_trip() -> None:
    wrapper = LocalKeyWrapper([KEY_A])
    sealed = seal(PLAINTEXT, wrapper, context=b"row-1")
    assert sealed.key_id == "a"
    assert PLAINTEXT not in sealed.ciphertext
    assert open_secret(sealed, wrapper, context=b"row-1") == PLAINTEXT
    # a fresh data key and nonce every time: equal secrets do not look equal at rest
    again = seal(PLAINTEXT, wrapper, context=b"row-1")
    assert again.ciphertext != sealed.ciphertext
    assert again.wrapped_key != sealed.wrapped_key


def test_a_wrong_master_key_does_not_open() -> None:
    sealed = seal(PLAINTEXT, LocalKeyWrapper([KEY_A]))
    impostor = LocalKeyWrapper([master_key("a")])  # same id, other bytes
    with pytest.raises(DecryptionError, match="does not open with master key 'a'"):
        open_secret(sealed, impostor)
    with pytest.raises(DecryptionError, match="SOCIALFLOW_SECURITY_MASTER_KEYS") as missing:
        open_secret(sealed, LocalKeyWrapper([KEY_B]))
    assert missing.value.code == "decryption_failed"


@pytest.mark.parametrize("part", ["ciphertext", "wrapped_key"])
@pytest.mark.parametrize("index", [0, 12, -1])
def test_tampered_data_does_not_open(part: str, index: int) -> None:
    wrapper = LocalKeyWrapper([KEY_A])
    sealed = seal(PLAINTEXT, wrapper)
    if part == "ciphertext":
        tampered = replace(sealed, ciphertext=flip(sealed.ciphertext, index))
    else:
        tampered = replace(sealed, wrapped_key=flip(sealed.wrapped_key, index))
    with pytest.raises(DecryptionError):
        open_secret(tampered, wrapper)


def test_truncated_ciphertext_does_not_open() -> None:
    wrapper = LocalKeyWrapper([KEY_A])
    sealed = seal(PLAINTEXT, wrapper)
    with pytest.raises(DecryptionError):
        open_secret(replace(sealed, ciphertext=sealed.ciphertext[:-1]), wrapper)


def test_different_associated_data_does_not_open() -> None:
    wrapper = LocalKeyWrapper([KEY_A])
    sealed = seal(PLAINTEXT, wrapper, context=b"workspace-1:row-1")
    for context in (b"workspace-2:row-1", b"workspace-1:row-2", b""):
        with pytest.raises(DecryptionError, match="data or context"):
            open_secret(sealed, wrapper, context=context)


def test_rewrap_keeps_the_secret_and_changes_the_key_id() -> None:
    sealed = seal(PLAINTEXT, LocalKeyWrapper([KEY_A]), context=b"c")
    rotated = rewrap(sealed, LocalKeyWrapper([KEY_B, KEY_A]))
    assert rotated.key_id == "b"
    assert rotated.ciphertext == sealed.ciphertext  # the secret itself is not re-encrypted
    assert rotated.wrapped_key != sealed.wrapped_key
    # once re-wrapped, the old key is no longer needed, and no longer enough
    assert open_secret(rotated, LocalKeyWrapper([KEY_B]), context=b"c") == PLAINTEXT
    with pytest.raises(DecryptionError):
        open_secret(rotated, LocalKeyWrapper([KEY_A]), context=b"c")


@pytest.mark.parametrize(
    "entry",
    [
        "a:not base64!",
        f"a:{base64.b64encode(os.urandom(16)).decode()}",  # 128 bits, not 256
        f"a:{base64.b64encode(os.urandom(33)).decode()}",
        f":{base64.b64encode(os.urandom(32)).decode()}",  # no id
        base64.b64encode(os.urandom(32)).decode(),  # no "id:" at all
        "a:",
    ],
    # stable names: random keys would name the tests differently in each process of a run
    ids=["not-base64", "128-bit", "264-bit", "no-id", "no-separator", "empty"],
)
def test_malformed_master_keys_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="master key"):
        LocalKeyWrapper([KEY_A, entry])


def test_no_master_key_needs_a_fallback_secret() -> None:
    with pytest.raises(ValueError, match="no master key"):
        LocalKeyWrapper([])
    dev = LocalKeyWrapper([], fallback_secret="a-development-secret")
    assert dev.current_key_id == "dev"
    sealed = seal(PLAINTEXT, dev)
    # derived, so the same secret opens it after a restart, and another does not
    assert open_secret(sealed, LocalKeyWrapper([], fallback_secret="a-development-secret"))
    with pytest.raises(DecryptionError):
        open_secret(sealed, LocalKeyWrapper([], fallback_secret="another-dev-secret"))


def test_key_wrapper_reads_the_settings() -> None:
    configured = key_wrapper(Settings(security={"master_keys": [KEY_B, KEY_A]}))
    assert configured.current_key_id == "b"
    assert key_wrapper(Settings(secret_key="s" * 32)).current_key_id == "dev"
    with pytest.raises(ValueError, match="SOCIALFLOW_SECURITY_MASTER_KEYS"):
        key_wrapper(Settings(security={"master_keys": ["a:short"]}))


# --- credential rows ------------------------------------------------------------------------


def credential_row(kind: str = "openai", workspace_id: uuid.UUID | None = None) -> Credential:
    return Credential(
        id=uuid.uuid4(), workspace_id=workspace_id or uuid.uuid4(), name="n", kind=kind
    )


def test_credential_round_trip_and_binding_to_its_row_and_workspace() -> None:
    wrapper = LocalKeyWrapper([KEY_A])
    secret = parse_secret("openai", {"api_key": " sk-test-0123456789abcdef\n"})
    row = credential_row()
    seal_credential(row, secret, wrapper)
    assert (row.key_id, row.hint) == ("a", "••••cdef")
    assert open_credential(row, wrapper) == {"api_key": "sk-test-0123456789abcdef"}

    moved_to_another_row = credential_row(workspace_id=row.workspace_id)
    moved_to_another_workspace = credential_row()
    moved_to_another_workspace.id = row.id
    for target in (moved_to_another_row, moved_to_another_workspace):
        target.ciphertext, target.wrapped_key, target.key_id = (
            row.ciphertext,
            row.wrapped_key,
            row.key_id,
        )
        with pytest.raises(DecryptionError):
            open_credential(target, wrapper)


def test_a_secret_of_another_kind_is_not_sealed() -> None:
    with pytest.raises(UserError) as refused:
        seal_credential(
            credential_row("anthropic"),
            parse_secret("pinecone", {"api_key": "x" * 20}),
            LocalKeyWrapper([KEY_A]),
        )
    assert refused.value.code == "credential_kind_mismatch"


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("abcdefghijkl", "••••ijkl"),  # 12 characters: the shortest that shows any
        ("abcdefghijk", "••••"),
        ("x", "••••"),
        ("sk-" + "z" * 60 + "WXYZ", "••••WXYZ"),
    ],
)
def test_hint_shows_at_most_four_characters(value: str, hint: str) -> None:
    assert hint_for(parse_secret("anthropic", {"api_key": value})) == hint


def test_hint_uses_each_kinds_main_secret_field() -> None:
    password = parse_secret("http-basic", {"username": "someone-long-name", "password": "p" * 11})
    assert hint_for(password) == "••••"
    s3 = parse_secret(
        "s3", {"access_key_id": "AKIAEXAMPLE0000", "secret_access_key": "secret-key-tail-WXYZ"}
    )
    assert hint_for(s3) == "••••WXYZ"


EXAMPLES = {
    "instagram": {"access_token": "IGQVJ-token-value"},
    "openai": {"api_key": "sk-x", "base_url": "http://127.0.0.1:11434/v1"},
    "anthropic": {"api_key": "sk-ant-x"},
    "ollama": {"base_url": "http://127.0.0.1:11434"},
    "pinecone": {"api_key": "pc-x"},
    "http-header": {"header_name": "X-Api-Key", "header_value": "v"},
    "http-basic": {"username": "u", "password": "p"},
    "s3": {
        "access_key_id": "AK",
        "secret_access_key": "SK",
        "region": "eu-west-1",
        "endpoint_url": "https://minio.example",
    },
}


def test_every_kind_has_an_example_that_validates() -> None:
    assert set(EXAMPLES) == set(CREDENTIAL_KINDS) == set(SECRET_MODELS)
    for kind, fields in EXAMPLES.items():
        assert parse_secret(kind, fields).model_dump(exclude_none=True) == fields


@pytest.mark.parametrize(
    ("kind", "fields", "where", "says"),
    [
        ("openai", {"apikey": "sk-1"}, ("api_key",), "required for kind openai"),
        ("openai", {"api_key": "k", "org": "o"}, ("org",), "openai takes api_key (required)"),
        ("openai", {"api_key": "k", "base_url": "ftp://x"}, ("base_url",), "http:// or https://"),
        (
            "http-header",
            {"header_name": "Bad Name", "header_value": "v"},
            ("header_name",),
            "letters",
        ),
        ("http-header", {"header_name": "X", "header_value": "a\r\nb"}, ("header_value",), "line"),
        ("http-basic", {"username": "a:b", "password": "p"}, ("username",), "without ':'"),
        ("s3", {"access_key_id": "a"}, ("secret_access_key",), "required for kind s3"),
        ("anthropic", "sk-not-an-object", (), "must be an object of fields"),
        ("telepathy", {}, (), "use one of: instagram, openai"),
    ],
)
def test_bad_fields_are_named_without_echoing_values(
    kind: str, fields: object, where: tuple[str, ...], says: str
) -> None:
    with pytest.raises(PydanticValidationError) as invalid:
        parse_secret(kind, fields)
    problems = {p["loc"]: p for p in invalid.value.errors()}
    assert where in problems, problems
    assert says in problems[where]["msg"]
    for value in fields.values() if isinstance(fields, dict) else [fields]:
        assert all(str(value) not in str(p.get("input", "")) for p in problems.values())
    assert "sk-" not in str(invalid.value)
