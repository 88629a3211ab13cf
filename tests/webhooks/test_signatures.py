"""Signature schemes on raw bytes, and agreement with Stripe's own library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import stripe

from tracker.webhooks.signatures import (
    BadSignature,
    verify_shopify,
    verify_standard,
    verify_stripe,
    verify_woocommerce,
)

BODY = b'{"id":820982911946154508,"landing_site":"\\/?utm_source=sms\\u0026x=1","name":"Caf\\u00e9"}'


def b64(key: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def test_shopify_accepts_either_secret_during_rotation():
    signature = b64(b"new-secret", BODY)
    verify_shopify(BODY, signature, ["new-secret", "old-secret"])
    verify_shopify(BODY, b64(b"old-secret", BODY), ["new-secret", "old-secret"])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "not base64 at all",
        hmac.new(b"s", BODY, hashlib.sha256).hexdigest(),  # hex instead of base64
        b64(b"other", BODY),
        b64(b"s", BODY.replace(b"\\/", b"/")),  # the body re-serialised without Shopify's escapes
    ],
)
def test_shopify_rejects_missing_wrong_and_hex_signatures(header):
    with pytest.raises(BadSignature):
        verify_shopify(BODY, header, ["s"])


def test_woocommerce_signs_with_the_entity_decoded_secret():
    verify_woocommerce(BODY, b64(b"a&b<c>", BODY), ["a&amp;b&lt;c&gt;"])
    verify_woocommerce(BODY, b64(b"plain", BODY), ["plain"])
    with pytest.raises(BadSignature):
        verify_woocommerce(BODY, b64(b"a&b<c>", BODY), ["something-else"])


def stripe_header(body: bytes, secret: str, t: int, extra: str = "") -> str:
    v1 = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}{extra}"


SECRET = "whsec_abc123"
NOW = int(time.time())


@pytest.mark.parametrize(
    "header",
    [
        stripe_header(BODY, SECRET, NOW),
        stripe_header(BODY, SECRET, NOW, ",v0=" + "6f" * 32),
        f"t={NOW},v1={'0' * 64}," + stripe_header(BODY, SECRET, NOW).split(",")[1],  # second v1 matches
        stripe_header(BODY, "whsec_other", NOW),
        stripe_header(BODY, SECRET, NOW - 301),  # older than the 5-minute tolerance
        stripe_header(BODY, SECRET, NOW - 200),
        f"t={NOW}",
        "v1=deadbeef",
        f"t={NOW},v0=" + stripe_header(BODY, SECRET, NOW).split("v1=")[1],  # only v0: ignored
        "garbage",
    ],
)
def test_stripe_verification_agrees_with_the_stripe_library(header):
    try:
        stripe.WebhookSignature.verify_header(BODY.decode(), header, SECRET, tolerance=300)
        library_accepts = True
    except stripe.SignatureVerificationError:
        library_accepts = False
    try:
        verify_stripe(BODY, header, ["whsec_rotated_out", SECRET])
        ours_accepts = True
    except BadSignature:
        ours_accepts = False
    assert ours_accepts == library_accepts


def test_stripe_library_builds_the_event_we_accept():
    header = stripe_header(BODY, SECRET, int(time.time()))  # signed now, whenever the test runs
    event = stripe.Webhook.construct_event(BODY.decode(), header, SECRET)
    verify_stripe(BODY, header, [SECRET])
    assert event["id"] == 820982911946154508


KEY = b"0123456789abcdef0123456789abcdef"
STANDARD_SECRET = "whsec_" + base64.b64encode(KEY).decode()


def standard(msg_id: str, t: int, body: bytes = BODY, key: bytes = KEY) -> str:
    return "v1," + b64(key, f"{msg_id}.{t}.".encode() + body)


def test_standard_webhooks_accepts_any_listed_v1_signature():
    now = int(time.time())  # signed now, whenever the test runs
    header = f"v1,{base64.b64encode(b'x' * 32).decode()} {standard('msg_1', now)}"
    verify_standard(BODY, "msg_1", str(now), header, [STANDARD_SECRET])


@pytest.mark.parametrize(
    "msg_id, t, header",
    [
        ("msg_1", NOW, standard("msg_2", NOW)),  # signed for another id
        ("msg_1", NOW - 301, standard("msg_1", NOW - 301)),  # too old
        ("msg_1", NOW + 301, standard("msg_1", NOW + 301)),  # too far ahead
        ("msg_1", NOW, standard("msg_1", NOW, key=b"other-key")),
        ("msg_1", NOW, "v1," + hmac.new(KEY, f"msg_1.{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()),
        ("msg_1", NOW, ""),
        ("", NOW, standard("", NOW)),
    ],
)
def test_standard_webhooks_rejects(msg_id, t, header):
    with pytest.raises(BadSignature):
        verify_standard(BODY, msg_id, str(t), header, [STANDARD_SECRET], now=NOW)
