"""Attribution models: how one order's credit is split over the touches that preceded it.

The one implementation of the split, for the nightly build and the live report alike. Pure
functions over plain data: a touch is its age before the order in whole seconds and whether it
was a direct visit. Credit is split exactly: money in integer minor units with a deterministic
largest-remainder rule, so the parts always add up to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from functools import cache
from typing import NamedTuple


class AttributionModel(StrEnum):
    """An attribution model: its name in URLs and JSON, and its label on the pages."""

    label: str

    def __new__(cls, value: str, label: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    LAST_CLICK = "last_click", "Last click"
    LAST_NON_DIRECT = "last_non_direct", "Last non-direct click"
    FIRST_CLICK = "first_click", "First click"
    LINEAR = "linear", "Linear"
    POSITION_BASED = "position_based", "Position based (40/20/40)"
    TIME_DECAY = "time_decay", "Time decay (7-day half-life)"
    # Every touched row gets the whole order: rows may add up to more than the store made.
    FULL_IMPACT = "full_impact", "Full impact"


MODELS = tuple(AttributionModel)
DEFAULT_MODEL = AttributionModel.LAST_CLICK
# Models whose credit adds up to the order: the ones a rollup can store per touch.
SPLIT_MODELS = tuple(m for m in MODELS if m is not AttributionModel.FULL_IMPACT)

POSITION_ENDS = Fraction(40, 100)
POSITION_MIDDLE = Fraction(20, 100)
HALF_LIFE_SECONDS = 7 * 24 * 3600
# Fractional orders and new customers are kept in units of 1/ORDER_SCALE.
ORDER_SCALE = 10_000


class TimedTouch(NamedTuple):
    """A session that may take credit: when it started, and whether it was a direct visit.

    (A named tuple: a report makes one per touch of every order, and tuples are cheap.)
    """

    at: datetime
    direct: bool = False


def model_of(name: str) -> AttributionModel:
    """The model named `name`; a ValueError naming the known ones otherwise."""
    try:
        return AttributionModel(name)
    except ValueError:
        raise ValueError(f"Unknown attribution model {name!r}; use one of: {', '.join(MODELS)}.") from None


def age_seconds(age: timedelta) -> int:
    """A touch's age rounded to whole seconds (half a second up), never negative."""
    return max((age // _MICROSECOND + 500_000) // 1_000_000, 0)


def model_weights(model: str, ages: Sequence[int], directs: Sequence[bool]) -> list[int]:
    """Each touch's share as a non-negative integer weight (touches in time order, each given by
    its age in whole seconds and whether it was direct). A share is a weight over their sum.

    `full_impact` weighs every touch alike here; the report gives each row it touches the whole order."""
    n = len(ages)
    if not isinstance(model, AttributionModel):
        model = model_of(model)
    if n == 0:
        return []
    chosen = _chosen_touch(model, directs)
    if chosen is not None:
        return [1 if i == chosen else 0 for i in range(n)]
    if model is AttributionModel.POSITION_BASED:
        return list(_position_weights(n))
    if model is AttributionModel.TIME_DECAY:
        return decay_weights_seconds(ages)
    return [1] * n  # linear, full_impact


def _chosen_touch(model: AttributionModel, directs: Sequence[bool]) -> int | None:
    """The one touch that takes the whole order under a single-touch model (None for the others):
    the last, the first, or the last that was not direct (the last when all were)."""
    n = len(directs)
    if model is AttributionModel.LAST_CLICK:
        return n - 1
    if model is AttributionModel.FIRST_CLICK:
        return 0
    if model is AttributionModel.LAST_NON_DIRECT:
        return next((i for i in range(n - 1, -1, -1) if not directs[i]), n - 1)
    return None


def credit_parts(
    model: str, ages: Sequence[int], directs: Sequence[bool], net_minor: int
) -> tuple[list[int], list[int]]:
    """What each touch receives of one order under a split model: (orders in 1/ORDER_SCALE,
    revenue in minor units); each list adds up to the whole. The nightly build calls this for
    tens of thousands of orders, so the single-touch models and the order units (which depend
    only on the number of touches) take short cuts to the same parts as model_weights() and
    allocate_ints() give."""
    if not isinstance(model, AttributionModel):
        model = model_of(model)
    n = len(ages)
    chosen = _chosen_touch(model, directs) if n else None
    if chosen is not None:
        units, revenue = [0] * n, [0] * n
        units[chosen], revenue[chosen] = ORDER_SCALE, net_minor
        return units, revenue
    if model is AttributionModel.TIME_DECAY:
        shares = decay_weights_seconds(ages)
        return allocate_ints(ORDER_SCALE, shares), allocate_ints(net_minor, shares)
    shares = _position_weights(n) if model is AttributionModel.POSITION_BASED else (1,) * n
    return list(_order_units(model, n)), allocate_ints(net_minor, shares)


@cache
def _order_units(model: AttributionModel, n: int) -> tuple[int, ...]:
    """One order in 1/ORDER_SCALE split over n touches by a model whose shares depend on n alone."""
    return tuple(allocate_ints(ORDER_SCALE, model_weights(model, [0] * n, [False] * n)))








@cache
def _position_weights(n: int) -> tuple[int, ...]:
    """position_based: 40 % to each end, 20 % spread over the n - 2 middle touches (one touch
    100 %, two 50/50)."""
    if n <= 2:
        return (1,) * n
    ends, middle = POSITION_ENDS * 5 * (n - 2), POSITION_MIDDLE * 5
    return (int(ends), *[int(middle)] * (n - 2), int(ends))


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




def decay_weights_seconds(ages: Sequence[int]) -> list[int]:
    """decay_weights() of ages already in whole seconds."""
    high, low = _decay_tables()
    parts = []
    for seconds in ages:
        halves, rest = divmod(seconds, HALF_LIFE_SECONDS)
        parts.append((halves, high[rest // _DECAY_STEP] * low[rest % _DECAY_STEP]))
    oldest = max(h for h, _ in parts)
    return [value << (oldest - halves) for halves, value in parts]




def allocate_ints(total: int, weights: Sequence[int]) -> list[int]:
    """Split an integer amount by integer weights; parts sum to `total` exactly.

    Largest remainder: everyone gets the floor of their exact part, then the units left over go
    to the largest fractional remainders, ties to the earlier touch."""
    n = len(weights)
    if n == 0:
        return []
    if total == 0:
        return [0] * n
    first = weights[0]
    if first and total > 0 and weights.count(first) == n:  # equal shares: no arithmetic per touch
        whole, left = divmod(total, n)
        return [whole + 1] * left + [whole] * (n - left)
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
