"""Exact money: ISO 4217 currencies, their minor-unit exponents, and conversions without floats."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from tracker.errors import InvalidMoney

# Currencies whose minor unit is not 1/100 (ISO 4217; Stripe treats these the same way).
_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
    "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR "
    "LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD "
    "PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP "
    "STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWL"
)

EXPONENTS: dict[str, int] = {
    **{code: 2 for code in _EXPONENT_2.split()},
    **{code: 0 for code in _EXPONENT_0.split()},
    **{code: 3 for code in _EXPONENT_3.split()},
}


# Amounts are stored as 64-bit integers of minor units and summed over many rows: anything of 10^15
# minor units (ten trillion dollars) or more is a typo or an attack, never a sale or a spend.
MAX_DIGITS = 15


def normalise_currency(code: str) -> str:
    """Upper-case an ISO 4217 code, or raise InvalidMoney naming the bad value."""
    upper = (code or "").strip().upper()
    if upper not in EXPONENTS:
        raise InvalidMoney(f"{code!r} is not an ISO 4217 currency code (e.g. USD, EUR, JPY).")
    return upper


def exponent(currency: str) -> int:
    return EXPONENTS[normalise_currency(currency)]


def to_minor(amount: str | int | Decimal, currency: str) -> int:
    """Convert a decimal amount ("199.00", "1500", Decimal) to integer minor units, exactly.

    Floats are refused: they cannot carry money exactly. Extra zero decimals are fine;
    a non-zero digit below the currency's minor unit is an error.
    """
    if isinstance(amount, float) or isinstance(amount, bool):
        raise InvalidMoney("Money must be a decimal string, not a floating-point number.")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise InvalidMoney(f"{amount!r} is not a decimal amount.") from None
    if not value.is_finite():
        raise InvalidMoney(f"{amount!r} is not a finite amount.")
    places = exponent(currency)
    if not value:
        return 0
    if value.adjusted() + places >= MAX_DIGITS:
        raise InvalidMoney(f"{amount!r} is larger than any amount a store or ad account records.")
    # Exactly, digit by digit (a Decimal context would round past its 28 digits): zeros below the
    # minor unit carry nothing; any other digit there is a fraction of the minor unit.
    sign, digits, exp = value.as_tuple()
    digits = list(digits)
    while exp < -places and digits[-1] == 0:
        digits.pop()
        exp += 1
    if exp < -places:
        raise InvalidMoney(f"{amount!r} has more decimals than {currency.upper()} allows.")
    minor = int("".join(map(str, digits))) * 10 ** (exp + places)
    return -minor if sign else minor


def from_minor(minor: int, currency: str) -> Decimal:
    """Integer minor units back to a Decimal with the currency's exponent (1999 USD -> 19.99)."""
    exp = exponent(currency)
    return Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def format_decimal(value: Decimal, places: int = 2) -> str:
    """Render a Decimal as a fixed-point string, rounding half to even."""
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))
