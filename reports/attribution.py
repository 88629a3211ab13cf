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


class DateBasis(StrEnum):
    """Which day a report dates credit by: the order's (the default), or the credited touch's own
    session start, so a campaign shows what it caused on the day it was clicked."""

    ORDER = "order"
    CLICK = "click"


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
    """The definition of each model: every touch's share as a non-negative integer weight (touches
    in time order, each given by its age in whole seconds and whether it was direct); a share is a
    weight over their sum. add_credit() computes exactly these shares, allocated in full
    (tests/reports/test_attribution.py holds it to them).

    `full_impact` weighs every touch alike here; the report gives each row it touches the whole order."""
    n = len(ages)
    if not isinstance(model, AttributionModel):
        model = model_of(model)
    if n == 0:
        return []
    if model is AttributionModel.LAST_CLICK:
        return [0] * (n - 1) + [1]
    if model is AttributionModel.FIRST_CLICK:
        return [1] + [0] * (n - 1)
    if model is AttributionModel.LAST_NON_DIRECT:
        chosen = last_non_direct(directs)
        return [1 if i == chosen else 0 for i in range(n)]
    if model is AttributionModel.POSITION_BASED:
        return list(_position_weights(n))
    if model is AttributionModel.TIME_DECAY:
        return decay_weights_seconds(ages)
    return [1] * n  # linear, full_impact


def last_non_direct(directs: Sequence[bool]) -> int:
    """The last touch that was not a direct visit (the last touch when all were)."""
    n = len(directs)
    return next((i for i in range(n - 1, -1, -1) if not directs[i]), n - 1)


# Every split model's credit of an order, side by side in one row per touch: for each model (in
# SPLIT_MODELS order, from its offset) orders and new customers in 1/ORDER_SCALE and revenue in
# minor units: (units, revenue, new).
MODEL_OFFSETS = {model: 3 * index for index, model in enumerate(SPLIT_MODELS)}
CREDIT_WIDTH = 3 * len(SPLIT_MODELS)
_LAST, _NON_DIRECT, _FIRST, _LINEAR, _POSITION, _DECAY = (
    MODEL_OFFSETS[m] for m in (
        AttributionModel.LAST_CLICK, AttributionModel.LAST_NON_DIRECT, AttributionModel.FIRST_CLICK,
        AttributionModel.LINEAR, AttributionModel.POSITION_BASED, AttributionModel.TIME_DECAY,
    )
)


def add_credit(rows: Sequence[list[int]], ages: Sequence[int], directs: Sequence[bool], net_minor: int,
               new: bool) -> None:
    """The one split: add one order's credit under every split model to the rows of its touches
    (touches in time order, rows CREDIT_WIDTH wide; touches may share a row). The nightly build
    adds tens of thousands of orders a night into its rollup rows, so each model's parts are
    written out here rather than computed generically (the same parts as model_weights() allocated
    in full by allocate_ints())."""
    n = len(rows)
    scale = ORDER_SCALE
    new_units = scale if new else 0
    for at, row in ((_LAST, rows[-1]), (_FIRST, rows[0]), (_NON_DIRECT, rows[last_non_direct(directs)])):
        row[at] += scale
        row[at + 1] += net_minor
        row[at + 2] += new_units
    lin_u, lin_m = _equal(scale, n), _equal(net_minor, n)
    if n <= 2:
        pos_u, pos_m = lin_u, lin_m
    else:
        pos_u, pos_m = _position_units(n), allocate_ints(net_minor, _position_weights(n))
    weights = decay_weights_seconds(ages)
    whole = sum(weights)  # never 0: every weight is positive
    dec_u, dec_m = _largest_remainder(scale, weights, whole), _largest_remainder(net_minor, weights, whole)
    for row, lu, lm, pu, pm, du, dm in zip(rows, lin_u, lin_m, pos_u, pos_m, dec_u, dec_m):  # noqa: B905
        row[_LINEAR] += lu
        row[_LINEAR + 1] += lm
        row[_POSITION] += pu
        row[_POSITION + 1] += pm
        row[_DECAY] += du
        row[_DECAY + 1] += dm
        if new:
            row[_LINEAR + 2] += lu
            row[_POSITION + 2] += pu
            row[_DECAY + 2] += du


def credit_parts(
    model: str, ages: Sequence[int], directs: Sequence[bool], net_minor: int
) -> tuple[list[int], list[int]]:
    """What each touch receives of one order under a split model, as add_credit() gives it:
    (orders in 1/ORDER_SCALE, revenue in minor units); each list adds up to the whole."""
    if not isinstance(model, AttributionModel):
        model = model_of(model)
    if not ages:
        return [], []
    rows = [[0] * CREDIT_WIDTH for _ in ages]
    add_credit(rows, ages, directs, net_minor, False)
    at = MODEL_OFFSETS[model]
    return [row[at] for row in rows], [row[at + 1] for row in rows]


def _equal(total: int, n: int) -> list[int]:
    """allocate_ints(total, [1] * n): the units left over go to the earliest touches."""
    whole, left = divmod(total, n)
    return [whole + 1] * left + [whole] * (n - left)


@cache
def _position_units(n: int) -> list[int]:
    """position_based's split of one order (in 1/ORDER_SCALE) over n touches."""
    return allocate_ints(ORDER_SCALE, _position_weights(n))


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


def decay_fixed(seconds: int) -> int:
    """2^(-seconds / half-life) in fixed point (_DECAY_BITS), computed in Decimal to 40 digits: the
    definition of every entry of decay_tables()."""
    with localcontext() as ctx:
        ctx.prec = 40
        return int(Decimal(2) ** _DECAY_BITS * Decimal(2) ** (-Decimal(seconds) / Decimal(HALF_LIFE_SECONDS)))


@cache
def decay_tables() -> tuple[list[int], list[int]]:
    """decay_fixed() of whole steps of _DECAY_STEP seconds up to a half-life, and of 0.._DECAY_STEP - 1
    seconds: powers of 2^(-step / half-life) by repeated multiplication at 60 digits, rounded to 40,
    which give exactly decay_fixed()'s entries (tests/reports/test_attribution.py holds every one
    to it) about 70 times faster than a power each: a build's process computes them once."""
    with localcontext() as ctx:
        ctx.prec = 60
        one = Decimal(2) ** _DECAY_BITS
        half_life = Decimal(HALF_LIFE_SECONDS)

        def powers(seconds: int, count: int) -> list[Decimal]:
            factor, value, out = Decimal(2) ** (-Decimal(seconds) / half_life), Decimal(1), []
            for _ in range(count):
                out.append(value)
                value *= factor
            return out

        high = powers(_DECAY_STEP, HALF_LIFE_SECONDS // _DECAY_STEP + 1)
        low = powers(1, _DECAY_STEP)
        ctx.prec = 40
        return [int(one * +v) for v in high], [int(one * +v) for v in low]


def decay_weights_seconds(ages: Sequence[int]) -> list[int]:
    """decay_weights() of ages already in whole seconds."""
    high, low = decay_tables()
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
    return _largest_remainder(total, weights, whole)


def _largest_remainder(total: int, weights: Sequence[int], whole: int) -> list[int]:
    """allocate_ints() by weights whose sum `whole` (not 0) is known: each weight's floor, then the
    units left over to the largest remainders (one division per weight gives both)."""
    parts, remainders = [], []
    for weight in weights:
        part, remainder = divmod(total * weight, whole)
        parts.append(part)
        remainders.append(remainder)
    left = total - sum(parts)
    if left:
        # A stable sort keeps equal remainders in touch order, even in reverse.
        for i in sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)[:left]:
            parts[i] += 1
    return parts
