"""What a delivery says, in plain data: strict JSON, timestamps, money, and the order/refund facts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tracker import strictjson
from tracker.errors import InvalidOrder, MalformedJson, MalformedPayload
from tracker.money import InvalidMoney, exponent, normalise_currency, to_minor
from tracker.sales import OrderStatus

_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass
class RefundFacts:
    external_id: str
    order_external_id: str
    amount_minor: int
    currency: str
    created_at: datetime


@dataclass
class OrderFacts:
    external_id: str
    created_at: datetime
    status: OrderStatus
    currency: str
    total_minor: int
    source_updated_at: datetime | None = None
    paid_at: datetime | None = None
    is_test: bool = False
    visitor_key: str | None = None
    email: str | None = None
    phone: str | None = None
    landing_url: str | None = None
    referrer: str | None = None


@dataclass
class Changes:
    """Everything one delivery asks to record."""

    orders: list[OrderFacts] = field(default_factory=list)
    refunds: list[RefundFacts] = field(default_factory=list)
    # Orders the store deleted: they count zero from now on.
    deleted: list[str] = field(default_factory=list)
    # A person to forget (a customer's erasure request), or the whole site's visit data.
    forget: Forget | None = None
    erase_site: bool = False


@dataclass(frozen=True)
class Forget:
    """Whom a store asks to erase: by email and phone, and the orders it names."""

    email: str | None
    phone: str | None
    order_ids: tuple[str, ...] = ()


def parse_json(body: bytes) -> dict[str, Any]:
    """A delivery's body as a JSON object (tracker.strictjson), numbers with a fraction as Decimals."""
    try:
        value = strictjson.loads(body, decimals=True)
    except MalformedJson as exc:
        raise MalformedPayload(str(exc)) from None
    if not isinstance(value, dict):
        raise MalformedPayload("The body must be a JSON object.")
    return value


def parse_time(value: Any, what: str = "timestamp") -> datetime | None:
    """An ISO-8601 time (offset, Z, nanoseconds, or naive meaning UTC) as aware UTC; None when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return from_unix(value, what)
    if not isinstance(value, str):
        raise InvalidOrder(f"The {what} must be an ISO-8601 string.")
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidOrder(f"The {what} {value[:40]!r} is not an ISO-8601 time.") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def from_unix(value: Any, what: str = "timestamp") -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidOrder(f"The {what} must be whole unix seconds.")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidOrder(f"The {what} {value} is out of range.") from None


def currency_code(value: Any, what: str = "currency") -> str:
    if not isinstance(value, str):
        raise InvalidOrder(f"The {what} must be an ISO 4217 code such as USD.")
    try:
        return normalise_currency(value)
    except InvalidMoney as exc:
        raise InvalidOrder(str(exc)) from None


def money_minor(amount: Any, currency: str, what: str = "amount") -> int:
    """A decimal string (or integer) in `currency` as integer minor units.

    Stores sometimes keep more decimals than the currency has (a WooCommerce store set to
    three decimals in USD): those are rounded half-to-even to the currency's minor unit.
    Floats are refused; JSON numbers arrive here as exact Decimals.
    """
    if isinstance(amount, bool) or amount is None or isinstance(amount, float):
        raise InvalidOrder(f"The {what} must be a decimal string such as \"19.99\".")
    if isinstance(amount, str | int):
        try:
            amount = Decimal(str(amount).strip())
        except ArithmeticError:
            raise InvalidOrder(f"The {what} {str(amount)[:40]!r} is not a decimal amount.") from None
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidOrder(f"The {what} must be a finite decimal amount.")
    places = Decimal(1).scaleb(-exponent(currency))
    try:
        return to_minor(amount.quantize(places, rounding=ROUND_HALF_EVEN), currency)
    except (InvalidMoney, ArithmeticError):  # beyond any order (see tracker.money.MAX_DIGITS)
        raise InvalidOrder(f"The {what} {str(amount)[:40]!r} is not a usable amount.") from None


def external_id(value: Any, what: str = "id") -> str:
    """An order or refund id as text; integers stay exact (Shopify ids exceed 2^53)."""
    if isinstance(value, bool) or value is None:
        raise InvalidOrder(f"The {what} is missing.")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value.strip()) <= 120:
        return value.strip()
    raise InvalidOrder(f"The {what} must be a number or a string of at most 120 characters.")


def text_or_none(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def first_text(*values: Any) -> str | None:
    for value in values:
        text = text_or_none(value)
        if text is not None:
            return text
    return None


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
