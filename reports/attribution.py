"""Attribution models: how one order's credit is split over the touches that preceded it.

Pure functions over plain data. Credit is split exactly: money in integer minor units with a
deterministic largest-remainder rule, so the parts always add up to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from fractions import Fraction

MODELS = (
    "last_click",
    "last_non_direct",
    "first_click",
    "linear",
    "position_based",
    "time_decay",
    "full_impact",
)
DEFAULT_MODEL = "last_click"
# Models whose credit adds up to the order: the ones a rollup can store per touch.
SPLIT_MODELS = tuple(m for m in MODELS if m != "full_impact")

POSITION_ENDS = Fraction(40, 100)
POSITION_MIDDLE = Fraction(20, 100)
HALF_LIFE_SECONDS = 7 * 24 * 3600
# Fractional orders and new customers are kept in units of 1/ORDER_SCALE.
ORDER_SCALE = 10_000


@dataclass(frozen=True)
class Touch:
    """A session that may take credit: when it started, and whether it was a direct visit."""

    at: datetime
    direct: bool = False


def weights(model: str, touches: Sequence[Touch], order_at: datetime) -> list[Fraction]:
    """Each touch's share of the order (touches in time order); the shares sum to 1.

    `full_impact` gives every touch a whole share (1 each): the caller counts each row once.
    """
    n = len(touches)
    if n == 0:
        return []
    if model == "last_click":
        return _one_hot(n, n - 1)
    if model == "first_click":
        return _one_hot(n, 0)
    if model == "last_non_direct":
        chosen = next((i for i in range(n - 1, -1, -1) if not touches[i].direct), n - 1)
        return _one_hot(n, chosen)
    if model == "linear":
        return [Fraction(1, n)] * n
    if model == "position_based":
        if n == 1:
            return [Fraction(1)]
        if n == 2:
            return [Fraction(1, 2)] * 2
        middle = POSITION_MIDDLE / (n - 2)
        return [POSITION_ENDS] + [middle] * (n - 2) + [POSITION_ENDS]
    if model == "time_decay":
        raw = [_decay(order_at, t.at) for t in touches]
        total = sum(raw)
        return [w / total for w in raw]
    if model == "full_impact":
        return [Fraction(1)] * n
    raise ValueError(f"Unknown attribution model {model!r}; use one of: {', '.join(MODELS)}.")


def _one_hot(n: int, index: int) -> list[Fraction]:
    return [Fraction(1) if i == index else Fraction(0) for i in range(n)]


def _decay(order_at: datetime, touch_at: datetime) -> Fraction:
    """2^(-age / half-life), computed in Decimal so the split never depends on float rounding."""
    age = max((order_at - touch_at).total_seconds(), 0)
    with localcontext() as ctx:
        ctx.prec = 28
        value = Decimal(2) ** (-Decimal(age) / Decimal(HALF_LIFE_SECONDS))
    return Fraction(value)


def allocate(total: int, shares: Sequence[Fraction]) -> list[int]:
    """Split an integer amount by shares; parts sum to `total` exactly.

    Largest remainder: everyone gets the floor of their exact part, then the units left over
    go to the largest fractional remainders, ties to the earlier touch.
    """
    if not shares:
        return []
    if total == 0:
        return [0] * len(shares)
    hot = [i for i, s in enumerate(shares) if s]
    if len(hot) == 1:  # single-touch models: no arithmetic needed
        parts = [0] * len(shares)
        parts[hot[0]] = total
        return parts
    whole = sum(shares)
    if whole == 0:
        raise ValueError("Cannot split an amount over shares that sum to zero.")
    exact = [Fraction(total) * s / whole for s in shares]
    parts = [e.numerator // e.denominator for e in exact]
    left = total - sum(parts)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def split(model: str, touches: Sequence[Touch], order_at: datetime, amount: int) -> list[int]:
    """The integer part of `amount` each touch receives under `model` (whole amount for full_impact)."""
    shares = weights(model, touches, order_at)
    if model == "full_impact":
        return [amount] * len(touches)
    return allocate(amount, shares)
