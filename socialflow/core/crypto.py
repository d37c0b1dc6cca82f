"""Envelope encryption of secrets at rest.

Each secret is sealed with its own random data key (AES-256-GCM); the data key is wrapped by a
master key. Master keys come from settings through ``LocalKeyWrapper``; a KMS implements the
same ``KeyWrapper`` protocol. Rotating the master key re-wraps data keys, never the secrets.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from socialflow.core.errors import AppError

__all__ = [
    "DecryptionError",
    "KeyWrapper",
    "LocalKeyWrapper",
    "Sealed",
    "open_secret",
    "rewrap",
    "seal",
]

_NONCE = 12


class DecryptionError(AppError):
    """A secret could not be opened: wrong or missing master key, or tampered data."""

    code = "decryption_failed"


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys with a master key (local keys or a KMS)."""

    @property
    def current_key_id(self) -> str: ...

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` with the current master key; returns (key id, wrapped key)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """Unwrap a data key wrapped by master key ``key_id``."""
        ...


class LocalKeyWrapper:
    """Master keys held in settings: ``['id:base64key', ...]``, the first one current.

    Args:
        keys: Master keys as ``id:base64(32 bytes)``.
        fallback_secret: Derives a development key when ``keys`` is empty.
    """

    def __init__(self, keys: list[str], *, fallback_secret: str | None = None) -> None:
        self._keys: dict[str, AESGCM] = {}
        self._order: list[str] = []
        for entry in keys:
            key_id, _, encoded = entry.partition(":")
            try:
                raw = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                msg = f"master key {key_id!r} is not valid base64"
                raise ValueError(msg) from exc
            if not key_id or len(raw) != 32:
                msg = "each master key must be 'id:base64(32 random bytes)'"
                raise ValueError(msg)
            self._keys[key_id] = AESGCM(raw)
            self._order.append(key_id)
        if not self._order:
            if fallback_secret is None:
                msg = "no master key configured"
                raise ValueError(msg)
            derived = hashlib.sha256(b"socialflow-dev-master-key:" + fallback_secret.encode())
            self._keys["dev"] = AESGCM(derived.digest())
            self._order.append("dev")

    @property
    def current_key_id(self) -> str:
        return self._order[0]

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        key_id = self.current_key_id
        return key_id, nonce + self._keys[key_id].encrypt(nonce, data_key, key_id.encode())

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        master = self._keys.get(key_id)
        if master is None:
            msg = (
                f"master key {key_id!r} is not configured; "
                "add it to SOCIALFLOW_SECURITY_MASTER_KEYS"
            )
            raise DecryptionError(msg)
        try:
            return master.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], key_id.encode())
        except InvalidTag as exc:
            msg = f"a data key does not open with master key {key_id!r}"
            raise DecryptionError(msg) from exc


@dataclass(frozen=True)
class Sealed:
    """A secret at rest: ciphertext, its wrapped data key, and which master key wrapped it."""

    ciphertext: bytes
    wrapped_key: bytes
    key_id: str


def seal(plaintext: bytes, wrapper: KeyWrapper, *, context: bytes = b"") -> Sealed:
    """Encrypt ``plaintext`` under a fresh data key; ``context`` is bound as associated data."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(_NONCE)
    ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, context)
    key_id, wrapped = wrapper.wrap(data_key)
    return Sealed(ciphertext=ciphertext, wrapped_key=wrapped, key_id=key_id)


def open_secret(sealed: Sealed, wrapper: KeyWrapper, *, context: bytes = b"") -> bytes:
    """Decrypt a sealed secret.

    Raises:
        DecryptionError: Unknown master key, or the data or context was tampered with.
    """
    data_key = wrapper.unwrap(sealed.key_id, sealed.wrapped_key)
    try:
        return AESGCM(data_key).decrypt(
            sealed.ciphertext[:_NONCE], sealed.ciphertext[_NONCE:], context
        )
    except InvalidTag as exc:
        msg = "a secret does not decrypt: its data or context was changed"
        raise DecryptionError(msg) from exc


def rewrap(sealed: Sealed, wrapper: KeyWrapper) -> Sealed:
    """The same secret with its data key wrapped by the current master key."""
    data_key = wrapper.unwrap(sealed.key_id, sealed.wrapped_key)
    key_id, wrapped = wrapper.wrap(data_key)
    return Sealed(ciphertext=sealed.ciphertext, wrapped_key=wrapped, key_id=key_id)
