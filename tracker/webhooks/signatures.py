"""Signature checks on the raw request bytes, constant-time, for every provider's scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import time

from tracker.errors import BadSignature
from tracker.sites import standard_key

# Stripe's own library rejects signatures older than this; Standard Webhooks allows this skew both ways.
STRIPE_TOLERANCE_SECONDS = 300
STANDARD_TOLERANCE_SECONDS = 300


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _matches_base64(digest: bytes, given: str) -> bool:
    return hmac.compare_digest(base64.b64encode(digest), given.strip().encode("utf-8", "replace"))


def verify_shopify(body: bytes, header: str | None, secrets: list[str]) -> None:
    """X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the body with the app or store secret."""
    if not header:
        raise BadSignature("The X-Shopify-Hmac-Sha256 header is missing.")
    if not any(_matches_base64(_hmac(s.encode(), body), header) for s in secrets):
        raise BadSignature("The X-Shopify-Hmac-Sha256 signature does not match a stored Shopify secret.")


def verify_woocommerce(body: bytes, header: str | None, secrets: list[str]) -> None:
    """X-WC-Webhook-Signature: base64 HMAC-SHA256 of the body, keyed with the entity-decoded secret."""
    if not header:
        raise BadSignature("The X-WC-Webhook-Signature header is missing.")
    for secret in secrets:
        for key in {secret, html.unescape(secret)}:
            if _matches_base64(_hmac(key.encode(), body), header):
                return
    raise BadSignature("The X-WC-Webhook-Signature does not match a stored WooCommerce secret.")


def verify_stripe(body: bytes, header: str | None, secrets: list[str], now: float | None = None) -> None:
    """Stripe-Signature `t=…,v1=…`: hex HMAC of "{t}.{body}" keyed with the whole whsec_ string."""
    if not header:
        raise BadSignature("The Stripe-Signature header is missing.")
    timestamp = None
    signatures = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and timestamp is None:
            timestamp = value.strip()
        elif name == "v1":
            signatures.append(value.strip().encode("utf-8", "replace"))
    if not timestamp or not timestamp.isdigit() or not signatures:
        raise BadSignature("The Stripe-Signature header needs a t= timestamp and a v1= signature.")
    signed = timestamp.encode() + b"." + body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest().encode() for s in secrets]
    if not any(hmac.compare_digest(e, given) for e in expected for given in signatures):
        raise BadSignature("The Stripe-Signature does not match a stored Stripe signing secret.")
    if int(timestamp) < (now if now is not None else time.time()) - STRIPE_TOLERANCE_SECONDS:
        raise BadSignature("The Stripe-Signature timestamp is more than 5 minutes old.")


def verify_standard(
    body: bytes,
    webhook_id: str | None,
    timestamp: str | None,
    header: str | None,
    secrets: list[str],
    now: float | None = None,
) -> None:
    """Standard Webhooks: `v1,<base64>` entries over "{id}.{timestamp}.{body}", timestamp within 5 minutes."""
    if not webhook_id or not timestamp or not header:
        raise BadSignature("The webhook-id, webhook-timestamp and webhook-signature headers are required.")
    stamp = timestamp.strip()
    if not stamp.isdigit():
        raise BadSignature("The webhook-timestamp must be unix seconds.")
    signed = f"{webhook_id.strip()}.{stamp}.".encode() + body
    given = []
    for entry in header.split():
        version, _, value = entry.partition(",")
        if version == "v1" and value:
            given.append(value)
    if not given:
        raise BadSignature("The webhook-signature header has no v1 signature.")
    keys = [key for key in (standard_key(s) for s in secrets) if key]
    if not any(_matches_base64(_hmac(key, signed), value) for key in keys for value in given):
        raise BadSignature("The webhook-signature does not match a stored orders secret.")
    if abs(int(stamp) - (now if now is not None else time.time())) > STANDARD_TOLERANCE_SECONDS:
        raise BadSignature("The webhook-timestamp is more than 5 minutes away from now.")
