"""Strict JSON, store timestamps and exact money, as plain functions."""

from __future__ import annotations

import pytest

from tracker.webhooks.payload import InvalidOrder, MalformedPayload, money_minor, parse_json, parse_time


@pytest.mark.parametrize(
    "body",
    [
        b'{"total": NaN}',
        b'{"total": Infinity}',
        b'{"total": -Infinity}',
        b'{"id": 1, "id": 2}',
        b'{"email": "\\ud800"}',
        b'{"email": "a\\u0000b"}',
        b'{"a\\u0000": 1}',
        b'["not", "an", "object"]',
        b'{"id": 1',
        b"\xff\xfe{}",
        b"[" * 5000 + b"]" * 5000,
        b"",
    ],
)
def test_strict_json_rejects_what_python_would_let_through(body):
    with pytest.raises(MalformedPayload):
        parse_json(body)


def test_strict_json_keeps_big_ids_and_escapes_exact():
    payload = parse_json(b'{"id": 5678901234567890123, "path": "\\/a\\u0026b", "name": "Caf\\u00e9"}')
    assert payload == {"id": 5678901234567890123, "path": "/a&b", "name": "Café"}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-10-05T11:20:00-04:00", "2026-10-05T15:20:00+00:00"),
        ("2024-08-03T18:28:37.234647458Z", "2024-08-03T18:28:37.234647+00:00"),
        ("2026-10-06T20:30:00", "2026-10-06T20:30:00+00:00"),  # WooCommerce _gmt: naive UTC
        ("2026-10-06T20:30:00.5+05:30", "2026-10-06T15:00:00.500000+00:00"),
        (1791000000, "2026-10-03T04:00:00+00:00"),
    ],
)
def test_store_timestamps_become_utc(value, expected):
    assert parse_time(value).isoformat() == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", ["2026"], True])
def test_bad_timestamps_are_refused(value):
    with pytest.raises(InvalidOrder):
        parse_time(value)


@pytest.mark.parametrize(
    "amount, currency, minor",
    [
        ("199.00", "USD", 19900),
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),
        ("12.345", "KWD", 12345),
        ("-10.00", "USD", -1000),
        ("10.125", "USD", 1012),  # a store with more decimals than the currency: half-even
        (" 7 ", "EUR", 700),
    ],
)
def test_money_is_exact_in_each_currency(amount, currency, minor):
    assert money_minor(amount, currency) == minor


@pytest.mark.parametrize("amount", [19.99, None, True, "abc", "1e400", "NaN"])
def test_money_refuses_floats_and_junk(amount):
    with pytest.raises(InvalidOrder):
        money_minor(amount, "USD")
