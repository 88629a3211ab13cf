"""How numbers read on the pages: money with its currency, ROI as a percentage, dashes for n/a."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Flask

from tracker.errors import InvalidMoney
from tracker.money import from_minor

NOT_AVAILABLE = "—"
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$",
           "INR": "₹", "BRL": "R$", "MXN": "MX$", "CHF": "CHF ", "SEK": "SEK ", "NOK": "NOK "}


def to_decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def money(value: object, currency: str = "USD", places: int | None = None) -> str:
    """'1234.5' -> '$1,234.50'; unknown currencies read '1,234.50 XYZ'."""
    amount = to_decimal(value)
    if amount is None:
        return NOT_AVAILABLE
    if places is None:
        places = 0 if currency in ("JPY", "KRW", "CLP", "VND") else 2
    sign = "-" if amount < 0 else ""
    digits = f"{abs(amount):,.{places}f}"
    symbol = SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{digits} {currency}"


def number(value: object, places: int = 0) -> str:
    """Counts with thousands separators; fractional credit (linear models) keeps two places."""
    amount = to_decimal(value)
    if amount is None:
        return NOT_AVAILABLE
    if places == 0 and amount != amount.to_integral_value():
        places = 2
    return f"{amount:,.{places}f}"


def percent(value: object, places: int = 0) -> str:
    """A ratio as a percentage: ROI 4.42 -> '442%', conversion 0.0583 -> '5.83%'."""
    amount = to_decimal(value)
    if amount is None:
        return NOT_AVAILABLE
    return f"{amount * 100:,.{places}f}%"


def times(value: object) -> str:
    """ROAS 5.42 -> '5.42×'."""
    amount = to_decimal(value)
    if amount is None:
        return NOT_AVAILABLE
    return f"{amount:,.2f}×"


def sign_class(value: object) -> str:
    """CSS class for a value that can be good or bad (ROI)."""
    amount = to_decimal(value)
    if amount is None:
        return "na"
    return "pos" if amount >= 0 else "neg"


def minor_money(minor: int, currency: str) -> str:
    """Integer minor units (as stored) as money: 1999 USD -> '$19.99'."""
    try:
        return money(from_minor(minor, currency), currency)
    except InvalidMoney:
        return f"{minor} {currency}"


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=money, number=number, percent=percent, times=times, sign_class=sign_class,
        minor_money=minor_money,
    )
