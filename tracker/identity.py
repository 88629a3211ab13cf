"""Emails and phones as keyed hashes: normalise, then HMAC with the instance secret."""

from __future__ import annotations

import hashlib
import hmac

from tracker.errors import InvalidIdentity
from tracker.limits import EMAIL_LENGTH

DEFAULT_PHONE_REGION = "US"


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > EMAIL_LENGTH or email.count("@") != 1:
        raise InvalidIdentity("An email address needs exactly one @ and at most 254 characters.")
    local, _, domain = email.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in email):
        raise InvalidIdentity(f"{value!r} is not an email address.")
    return email


def normalise_phone(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """Return the E.164 form (+15551234567); national numbers are read in `region`."""
    # Loaded on the first phone number: its metadata takes 16 ms to load, which every command (the
    # nightly `tracker reports build` among them) and the server's start would pay otherwise.
    import phonenumbers

    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentity(f"{value!r} is not a phone number.") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity(f"{value!r} is not a possible phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identity_hash(secret_key: str, kind: str, normalised: str) -> str:
    """The stored form of an identity: hex HMAC-SHA256, keyed with the instance secret."""
    message = f"{kind}:{normalised}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def hash_email(secret_key: str, value: str | None) -> str | None:
    """Hash an email if it is one; None for empty or malformed values (orders may carry junk)."""
    if not value:
        return None
    try:
        return identity_hash(secret_key, "email", normalise_email(value))
    except InvalidIdentity:
        return None


def hash_phone(secret_key: str, value: str | None, region: str = DEFAULT_PHONE_REGION) -> str | None:
    if not value:
        return None
    try:
        return identity_hash(secret_key, "phone", normalise_phone(value, region))
    except InvalidIdentity:
        return None
