"""Inbox bodies sealed at rest: a delivery carries buyers' emails and phones, which are never
stored in clear, so the raw bytes kept for replay are encrypted (AES-256-GCM) with a key
derived from the instance secret. Changing TRACKER_SECRET_KEY makes older bodies unreadable,
as it already changes every identity hash."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tracker.errors import UnreadableBody

PREFIX = b"sealed1:"
NONCE_BYTES = 12


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"tracker webhook inbox v1", hashlib.sha256).digest()


def seal(secret_key: str, body: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return PREFIX + nonce + AESGCM(_key(secret_key)).encrypt(nonce, body, PREFIX)


def unseal(secret_key: str, stored: bytes) -> bytes:
    """The original delivery bytes; bodies stored before sealing existed come back unchanged."""
    stored = bytes(stored)
    if not stored.startswith(PREFIX):
        return stored
    nonce = stored[len(PREFIX) : len(PREFIX) + NONCE_BYTES]
    try:
        return AESGCM(_key(secret_key)).decrypt(nonce, stored[len(PREFIX) + NONCE_BYTES :], PREFIX)
    except InvalidTag:
        raise UnreadableBody(
            "This stored delivery was sealed with another TRACKER_SECRET_KEY and cannot be read."
        ) from None
