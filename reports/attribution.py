"""Attribution models: how one order's credit is split over the touches that preceded it.

Pure functions over plain data. Credit is split exactly: money in integer minor units with a
deterministic largest-remainder rule, so the parts always add up to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import cache
from math import lcm
from typing import NamedTuple

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


class Touch(NamedTuple):
    """A session that may take credit: when it started, and whether it was a direct visit.

    (A named tuple: a nightly build makes one per touch of every order, and tuples are cheap.)
    """

    at: datetime
    direct: bool = False


def weights(model: str, touches: Sequence[Touch], order_at: datetime) -> list[Fraction]:
    """Each touch's share of the order (touches in time order); the shares sum to 1.

    `full_impact` gives every touch a whole share (1 each): the caller counts each row once.
    """
    raw = int_weights(model, touches, order_at)
    if model == "full_impact":
        return [Fraction(1)] * len(raw)
    total = sum(raw)
    return [Fraction(w, total) for w in raw]


def int_weights(model: str, touches: Sequence[Touch], order_at: datetime) -> list[int]:
    """Each touch's share as a non-negative integer weight (touches in time order).

    Integers keep the split exact and fast: a share is a weight over the sum of the weights.
    """
    n = len(touches)
    if model not in MODELS:
        raise ValueError(f"Unknown attribution model {model!r}; use one of: {', '.join(MODELS)}.")
    if n == 0:
        return []
    if model == "last_click":
        return _one_hot(n, n - 1)
    if model == "first_click":
        return _one_hot(n, 0)
    if model == "last_non_direct":
        chosen = next((i for i in range(n - 1, -1, -1) if not touches[i].direct), n - 1)
        return _one_hot(n, chosen)
    if model == "position_based":
        if n <= 2:
            return [1] * n
        # 40 % to each end, 20 % spread over the n - 2 middle touches.
        ends, middle = POSITION_ENDS * 5 * (n - 2), POSITION_MIDDLE * 5
        return [int(ends)] + [int(middle)] * (n - 2) + [int(ends)]
    if model == "time_decay":
        return decay_weights([order_at - t.at for t in touches])
    return [1] * n  # linear, full_impact


def _one_hot(n: int, index: int) -> list[int]:
    return [1 if i == index else 0 for i in range(n)]


# 2^(-age / half-life) in fixed point: whole half-lives are a shift, the rest of the age (in seconds)
# a product of two table entries, computed once in Decimal. Integer-only, so the split never depends
# on float rounding and is the same on every machine.
_DECAY_BITS = 64
_DECAY_STEP = 1024
_MICROSECOND = timedelta(microseconds=1)


@cache
def _decay_tables() -> tuple[list[int], list[int]]:
    with localcontext() as ctx:
        ctx.prec = 40
        one = Decimal(2) ** _DECAY_BITS
        half_life = Decimal(HALF_LIFE_SECONDS)

        def fixed(seconds: int) -> int:
            return int(one * Decimal(2) ** (-Decimal(seconds) / half_life))

        high = [fixed(i * _DECAY_STEP) for i in range(HALF_LIFE_SECONDS // _DECAY_STEP + 1)]
        low = [fixed(j) for j in range(_DECAY_STEP)]
    return high, low


def decay_weights(ages: Sequence[timedelta]) -> list[int]:
    """Integer weights proportional to 2^(-age / 7 days), ages rounded to whole seconds."""
    return decay_weights_seconds([age_seconds(age) for age in ages])


def age_seconds(age: timedelta) -> int:
    """A touch's age rounded to whole seconds (half a second up), never negative."""
    return max((age // _MICROSECOND + 500_000) // 1_000_000, 0)


def decay_weights_seconds(ages: Sequence[int]) -> list[int]:
    """decay_weights() of ages already in whole seconds."""
    high, low = _decay_tables()
    parts = []
    for seconds in ages:
        halves, rest = divmod(seconds, HALF_LIFE_SECONDS)
        parts.append((halves, high[rest // _DECAY_STEP] * low[rest % _DECAY_STEP]))
    oldest = max(h for h, _ in parts)
    return [value << (oldest - halves) for halves, value in parts]


def allocate(total: int, shares: Sequence[Fraction]) -> list[int]:
    """Split an integer amount by shares; parts sum to `total` exactly.

    Largest remainder: everyone gets the floor of their exact part, then the units left over
    go to the largest fractional remainders, ties to the earlier touch.
    """
    if not shares:
        return []
    common = lcm(*(s.denominator for s in shares))
    return allocate_ints(total, [s.numerator * (common // s.denominator) for s in shares])


def allocate_ints(total: int, weights: Sequence[int]) -> list[int]:
    """Split an integer amount by integer weights (largest remainder, ties to the earlier touch)."""
    n = len(weights)
    if n == 0:
        return []
    if total == 0:
        return [0] * n
    whole = sum(weights)
    if whole == 0:
        raise ValueError("Cannot split an amount over shares that sum to zero.")
    parts = [total * w // whole for w in weights]
    left = total - sum(parts)
    if left:
        remainders = [total * w % whole for w in weights]
        # A stable sort keeps equal remainders in touch order, even in reverse.
        for i in sorted(range(n), key=remainders.__getitem__, reverse=True)[:left]:
            parts[i] += 1
    return parts


def split(model: str, touches: Sequence[Touch], order_at: datetime, amount: int) -> list[int]:
    """The integer part of `amount` each touch receives under `model` (whole amount for full_impact)."""
    raw = int_weights(model, touches, order_at)
    if model == "full_impact":
        return [amount] * len(touches)
    return allocate_ints(amount, raw)
