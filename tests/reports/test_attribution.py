"""The models alone: who gets what share of one order, and exact splits in minor units."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.attribution import (
    MODELS,
    ORDER_SCALE,
    SPLIT_MODELS,
    TimedTouch,
    age_seconds,
    allocate_ints,
    credit_parts,
    decay_fixed,
    decay_tables,
    model_of,
    model_weights,
)
from reports.credit import UNATTRIBUTED_KEY, CreditedOrder, credit_rows

ORDER_AT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def path(*days_before: float, direct: tuple[int, ...] = ()) -> list[TimedTouch]:
    return [TimedTouch(ORDER_AT - timedelta(days=d), i in direct) for i, d in enumerate(days_before)]


@pytest.mark.parametrize(
    ("model", "touches", "expected"),
    [
        ("last_click", path(9, 3, 1), [0, 0, 9000]),
        ("first_click", path(9, 3, 1), [9000, 0, 0]),
        ("last_non_direct", path(9, 3, 1, direct=(2,)), [0, 9000, 0]),
        ("last_non_direct", path(9, 3, 1, direct=(0, 1, 2)), [0, 0, 9000]),  # all direct: the last
        ("last_click", path(2), [9000]),
        ("linear", path(9, 3, 1), [3000, 3000, 3000]),
        ("linear", path(3, 2, 1), [3000, 3000, 3000]),
        ("position_based", path(5), [9000]),
        ("position_based", path(5, 1), [4500, 4500]),
        ("position_based", path(5, 3, 1), [3600, 1800, 3600]),
        ("position_based", path(9, 5, 3, 1), [3600, 900, 900, 3600]),
        # 2^(-age/7 days): 10 days, 23 hours and 10 minutes before the order.
        ("time_decay", [TimedTouch(ORDER_AT - timedelta(days=10)), TimedTouch(ORDER_AT - timedelta(hours=23)),
                        TimedTouch(ORDER_AT - timedelta(minutes=10))], [1466, 3590, 3944]),
        ("time_decay", path(7, 0), [3000, 6000]),  # one half-life older: half the weight
        ("full_impact", path(9, 3, 1), [9000, 9000, 9000]),
    ],
)
def test_split_gives_each_touch_its_share(model, touches, expected):
    """Each touch in a row of its own: the row's revenue is the touch's share of a 90.00 order."""
    keys = [(f"touch {i}",) * 6 for i in range(len(touches))]
    order = CreditedOrder(1, ORDER_AT, ORDER_AT.date(), 9000, False, list(zip(touches, keys, strict=True)))
    rows = credit_rows([order], model, lambda _order, _touch, key: key)
    assert [rows.get(key, [0, 0, 0])[1] for key in keys] == expected


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # the leftover cent goes to the earliest
        (1, [1, 1], [1, 0]),
        (0, [1, 1], [0, 0]),
        (1001, [2, 1, 2], [401, 200, 400]),
        (7, [1] * 7, [1] * 7),
        (100, [3, 0, 1], [75, 0, 25]),
    ],
)
def test_allocate_is_exact_and_deterministic(total, weights, expected):
    assert allocate_ints(total, weights) == expected
    assert sum(allocate_ints(total, weights)) == total


@pytest.mark.parametrize("model", SPLIT_MODELS)
def test_each_model_gives_out_the_whole_order(model):
    touches = path(20, 9, 3, 1, 0.01, direct=(1,))
    ages = [age_seconds(ORDER_AT - t.at) for t in touches]
    units, revenue = credit_parts(model, ages, [t.direct for t in touches], 12345)
    assert (sum(units), sum(revenue)) == (ORDER_SCALE, 12345)


def test_time_decay_weighs_every_age_by_its_definition():
    # the tables the split multiplies are each entry's own power of two, computed directly
    high, low = decay_tables()
    step = len(low)
    assert high == [decay_fixed(i * step) for i in range(len(high))]
    assert low == [decay_fixed(j) for j in range(step)]
    assert high[0] == 2**64 and decay_fixed(7 * 24 * 3600) == 2**63


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="Unknown attribution model"):
        model_of("last_touch")


KEYS = [("SMS", "attentive", "sms", "welcome", "10off", "vip"),
        ("Direct", "(direct)", "(none)", "(not set)", "(not set)", "(not set)"),
        ("Organic Search", "google", "organic", "(not set)", "(not set)", "(not set)"),
        ("SMS", "postscript", "sms", "winback", "(not set)", "(not set)")]

histories = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=10_000_000),  # net revenue in cents
        st.booleans(),  # new customer
        st.lists(st.tuples(st.floats(min_value=0, max_value=60, allow_nan=False), st.sampled_from(KEYS)),
                 max_size=6),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(histories, st.sampled_from([(0,), (1,), (0, 1, 2, 3), (5,), (1, 3)]))
def test_random_histories_reconcile(history, dims):
    orders = []
    for i, (net, new, touches) in enumerate(history):
        ordered = sorted(touches, key=lambda t: -t[0])
        orders.append(CreditedOrder(i, ORDER_AT, ORDER_AT.date(), net, new, [
            (TimedTouch(ORDER_AT - timedelta(days=age), key[1] == "(direct)"), key) for age, key in ordered
        ]))
    net = sum(o.net_minor for o in orders)
    project = lambda _order, _touch, key: tuple(key[i] for i in dims)  # noqa: E731
    for model in MODELS:
        rows = credit_rows(orders, model, project)
        if model == "full_impact":
            # every row an order touched carries all of it; no row more than the store made
            assert all(revenue <= net for _, revenue, _ in rows.values())
            assert sum(r[1] for r in rows.values()) >= net
            continue
        assert sum(r[1] for r in rows.values()) == net
        assert sum(r[0] for r in rows.values()) == ORDER_SCALE * len(orders)
        assert sum(r[2] for r in rows.values()) == ORDER_SCALE * sum(1 for o in orders if o.is_new)
        unattributed = tuple(UNATTRIBUTED_KEY[i] for i in dims)
        assert rows.get(unattributed, [0, 0, 0])[1] == sum(o.net_minor for o in orders if not o.touches)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=90 * 86400), st.booleans()),
             min_size=1, max_size=8),
    st.integers(min_value=0, max_value=10_000_000),
)
def test_the_builds_short_cuts_give_each_models_own_split(touches, net):
    """credit_parts (what the nightly build and the live report call) gives, for every split model,
    exactly the parts of the model's weights allocated in full."""
    touches.sort(key=lambda t: -t[0])
    ages, directs = [a for a, _ in touches], [d for _, d in touches]
    for model in SPLIT_MODELS:
        shares = model_weights(model, ages, directs)
        assert credit_parts(model, ages, directs, net) == (allocate_ints(ORDER_SCALE, shares),
                                                            allocate_ints(net, shares))
