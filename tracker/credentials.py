"""Passwords and API tokens: only their hashes are ever stored."""

from __future__ import annotations

import hashlib
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from tracker.errors import InvalidPassword

TOKEN_PREFIX = "trk_"
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidPassword(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return generate_password_hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    return check_password_hash(stored_hash, password)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()
