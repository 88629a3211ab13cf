"""Rollups answer exactly like the raw tables, and notice what changed after the build."""

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from reports import build, credit, rollups
from reports.roi import parse_report_query, roi_report, traffic_rows
from tests.reports.conftest import utc
from tracker.days import range_bounds
from tracker.models import Order
from tracker.people import merge_persons
from tracker.webhooks.orders import apply_refund
from tracker.webhooks.payload import RefundFacts

SMS = ("attentive", "sms", "welcome")
SMS_OFFER = ("attentive", "sms", "welcome", "10off")
EMAIL = ("klaviyo", "email", "newsletter")
DIRECT = ("(direct)", "(none)", "(not set)")


def report(session, site, **args):
    params = {"site": site.public_id, "from": "2026-11-20", "to": "2026-11-20", **args}
    return roi_report(session, parse_report_query(session, params))


def revenue(result) -> dict[tuple, str]:
    return {(r["source"], r["medium"], r["campaign"]): r["revenue"] for r in result["rows"]
            if r["revenue"] != "0.00"}


def rebuild(session, site, first="2026-11-01", last="2026-11-22"):
    build.build_site(session, site, date.fromisoformat(first), date.fromisoformat(last))


@pytest.fixture
def returning(world):
    """Visitors coming back over several days, through two offers of one campaign and other rows."""
    a, b, c = world.visitor(), world.visitor(), world.visitor()
    for visitor, at, key in [
        (a, "2026-11-03 15:00", SMS_OFFER), (a, "2026-11-03 18:00", SMS), (a, "2026-11-05 15:00", SMS),
        (a, "2026-11-09 15:00", EMAIL), (a, "2026-11-12 15:00", SMS_OFFER),
        (b, "2026-11-04 03:00", SMS),  # 22:00 on the 3rd in New York
        (b, "2026-11-05 15:00", DIRECT), (b, "2026-11-12 16:00", SMS), (b, "2026-11-12 17:00", SMS),
        (c, "2026-10-20 15:00", SMS), (c, "2026-11-10 15:00", SMS_OFFER), (c, "2026-11-10 16:00", EMAIL),
    ]:
        world.visit(visitor, at, *key)
    world.order("2026-11-12 16:30", "40.00", visitor=b)
    world.commit()
    return world


GROUPINGS = ["source,medium,campaign", "channel", "campaign,medium,source", "source,content"]


@pytest.mark.parametrize("by", GROUPINGS)
@pytest.mark.parametrize(("first", "last"), [("2026-11-01", "2026-11-22"), ("2026-11-04", "2026-11-09"),
                                             ("2026-11-05", "2026-11-05"), ("2026-11-10", "2026-11-12"),
                                             ("2026-11-03", "2026-11-03")])
def test_traffic_rollups_count_like_the_sessions(session, returning, by, first, last):
    site = returning.site
    rebuild(session, site, "2026-10-15", "2026-11-22")
    query = parse_report_query(session, {"site": site.public_id, "from": first, "to": last, "by": by})
    start, end = range_bounds(query.date_from, query.date_to, query.tz)
    exact = credit.session_rows(session, site, start, end, query.by)
    assert traffic_rows(session, query) == exact
    assert exact[1][0] > 0


def test_visitors_of_a_grouping_count_each_visitor_once(session, returning):
    rebuild(session, returning.site, "2026-10-15", "2026-11-22")
    result = report(session, returning.site, **{"from": "2026-11-01", "to": "2026-11-22"})
    rows = {(r["source"], r["medium"], r["campaign"]): r for r in result["rows"]}
    # a: 3rd (twice, two offers), 5th, 12th; b: 3rd (local), 12th twice; c: 10th
    assert (rows[SMS]["sessions"], rows[SMS]["visitors"]) == (8, 3)
    assert (result["totals"]["sessions"], result["totals"]["visitors"]) == (11, 3)


def test_a_session_recorded_after_the_build_still_counts(session, returning):
    rebuild(session, returning.site)
    late = returning.visitor()
    returning.visit(late, "2026-11-20 15:00", *SMS)
    returning.commit()
    result = report(session, returning.site, **{"from": "2026-11-01"})
    rows = {(r["source"], r["medium"], r["campaign"]): r for r in result["rows"]}
    assert (rows[SMS]["sessions"], rows[SMS]["visitors"]) == (9, 4)


@pytest.fixture
def sale(world):
    visitor = world.visitor()
    world.visit(visitor, "2026-11-20 14:00", *SMS)
    order = world.order("2026-11-20 15:00", "100.00", visitor=visitor)
    world.commit()
    return world, order


def test_a_refund_amount_changed_in_place_after_the_build(session, sale):
    world, order_id = sale
    site = world.site
    external = session.scalars(select(Order).where(Order.id == order_id)).one().external_id
    refund = RefundFacts("re_1", external, 1000, "USD", utc("2026-11-21 10:00"))
    apply_refund(session, site, "orders", refund)
    session.commit()
    rebuild(session, site)
    assert revenue(report(session, site)) == {SMS: "90.00"}
    # Stripe sends the cumulative amount of the same refund: the row changes in place.
    apply_refund(session, site, "orders", RefundFacts("re_1", external, 2500, "USD", utc("2026-11-21 11:00")))
    session.commit()
    result = report(session, site)
    assert revenue(result) == {SMS: "75.00"} and result["totals"]["revenue"] == "75.00"
    assert result["built_through"] == "2026-11-22"


def test_a_cancellation_after_the_build(session, sale):
    world, order_id = sale
    rebuild(session, world.site)
    assert report(session, world.site)["totals"]["revenue"] == "100.00"
    session.scalars(select(Order).where(Order.id == order_id)).one().status = "cancelled"
    session.commit()
    result = report(session, world.site, model="linear")
    assert result["totals"]["revenue"] == "0.00" and revenue(result) == {}


@pytest.mark.parametrize("before", ["person", "other device", "visitor", "refunded in full"])
def test_a_sale_long_before_the_day_makes_its_customer_returning(session, world, before):
    person = world.person()
    phone, laptop, lone = world.visitor(person), world.visitor(person), world.visitor()
    buyer = lone if before in ("visitor", "refunded in full") else phone
    first = world.order("2026-09-01 16:00", "10.00", visitor=buyer,
                        person=person if before == "person" else None,
                        status="refunded" if before == "refunded in full" else "paid")
    if before == "refunded in full":
        world.refund(first, "10.00", "2026-09-02 09:00")
    again = lone if buyer == lone else laptop
    world.visit(again, "2026-11-20 15:00", *SMS)
    world.order("2026-11-20 16:00", "10.00", visitor=again)
    world.commit()
    new = "1.00" if before == "refunded in full" else "0.00"
    assert report(session, world.site)["totals"]["new_customers"] == new
    rebuild(session, world.site, "2026-11-20", "2026-11-20")  # the night of that day alone
    assert report(session, world.site)["totals"]["new_customers"] == new


def test_a_cancelled_first_order_makes_the_next_one_a_new_customer(session, world):
    visitor = world.visitor()
    world.visit(visitor, "2026-11-10 14:00", *SMS)
    first = world.order("2026-11-10 15:00", "30.00", visitor=visitor)
    world.order("2026-11-20 15:00", "50.00", visitor=visitor)
    world.commit()
    rebuild(session, world.site)
    assert report(session, world.site)["totals"]["new_customers"] == "0.00"
    session.scalars(select(Order).where(Order.id == first)).one().status = "cancelled"
    session.commit()
    assert report(session, world.site)["totals"]["new_customers"] == "1.00"


def test_a_person_merge_after_the_build(session, world):
    laptop_owner, phone_owner = world.person(), world.person()  # the laptop's person survives
    phone, laptop = world.visitor(phone_owner), world.visitor(laptop_owner)
    world.visit(phone, "2026-11-18 15:00", *SMS)
    world.visit(laptop, "2026-11-20 14:00")
    order = world.order("2026-11-20 15:00", "60.00", visitor=laptop, person=laptop_owner)
    world.commit()
    rebuild(session, world.site)
    assert revenue(report(session, world.site, model="first_click")) == {DIRECT: "60.00"}
    merge_persons(session, world.site.id, phone_owner, laptop_owner)
    session.commit()
    assert session.scalar(select(Order.person_id).where(Order.id == order)) == laptop_owner
    assert revenue(report(session, world.site, model="first_click")) == {SMS: "60.00"}
    assert revenue(report(session, world.site, model="linear")) == {SMS: "30.00", DIRECT: "30.00"}


def test_many_changed_days_mix_with_the_rollups_of_the_others(session, world):
    visitor = world.visitor()
    orders = {}
    for day in (10, 12, 14, 16, 18):
        world.visit(visitor, f"2026-11-{day} 14:00", *SMS)
        orders[day] = world.order(f"2026-11-{day} 15:00", "10.00", visitor=visitor)
    world.commit()
    rebuild(session, world.site)
    span = {"from": "2026-11-01", "to": "2026-11-22"}
    assert report(session, world.site, **span)["totals"]["revenue"] == "50.00"
    session.scalars(select(Order).where(Order.id == orders[10])).one().status = "cancelled"
    session.scalars(select(Order).where(Order.id == orders[12])).one().total_minor = 2000
    session.scalars(select(Order).where(Order.id == orders[14])).one().status = "voided"
    session.scalars(select(Order).where(Order.id == orders[18])).one().status = "refunded"
    session.commit()
    result = report(session, world.site, model="linear", **span)
    assert (result["totals"]["revenue"], result["totals"]["orders"]) == ("30.00", "2.00")
    assert revenue(result) == {SMS: "30.00"}
    assert result["totals"]["new_customers"] == "1.00"  # the order of the 12th is now the first sale


def test_local_days_follow_daylight_saving(session, world):
    visitor = world.visitor()
    # New York leaves daylight saving at 06:00 UTC on 2026-11-01: that local day lasts 25 hours.
    world.visit(visitor, "2026-11-01 04:30", *SMS)  # 00:30 EDT on the 1st
    world.visit(visitor, "2026-11-02 04:30", *EMAIL)  # 23:30 EST on the 1st
    world.visit(visitor, "2026-11-02 05:30", *SMS)  # 00:30 EST on the 2nd
    world.commit()
    rebuild(session, world.site, "2026-10-25", "2026-11-05")
    first = report(session, world.site, **{"from": "2026-11-01", "to": "2026-11-01"})
    assert (first["totals"]["sessions"], first["totals"]["visitors"]) == (2, 1)
    both = report(session, world.site, **{"from": "2026-11-01", "to": "2026-11-02"})
    rows = {(r["source"], r["medium"], r["campaign"]): r for r in both["rows"]}
    assert (rows[SMS]["sessions"], rows[SMS]["visitors"], both["totals"]["visitors"]) == (2, 1, 1)


@pytest.mark.parametrize(("model", "lookback"), [
    ("full_impact", "30"), ("linear", "60"), ("first_click", "1"), ("time_decay", "30"),
    ("position_based", "30"),
])
def test_a_build_changes_no_answer(session, returning, model, lookback):
    returning.order("2026-11-10 17:00", "25.00", visitor=returning.visitor())  # unattributed
    returning.commit()
    args = {"from": "2026-11-01", "to": "2026-11-22", "model": model, "lookback": lookback}
    before = report(session, returning.site, **args)
    rebuild(session, returning.site)
    after = report(session, returning.site, **args)
    assert after["built_through"] == "2026-11-22"
    assert {**after, "built_through": None} == before
    for by in ("channel", "source,medium,campaign,content,term"):
        assert report(session, returning.site, by=by, **args)["totals"] == before["totals"]


def test_the_nightly_build_rebuilds_days_that_changed_since(runner, session, sale):
    from reports.models import ReportRollup
    from tracker.cli import main

    world, order_id = sale
    site = world.site
    args = ["reports", "build", "--site", site.domain, "--from", "2026-11-19", "--to", "2026-11-21"]
    assert runner.invoke(main, args).exit_code == 0
    session.scalars(select(Order).where(Order.id == order_id)).one().status = "cancelled"
    late = world.visitor()
    world.visit(late, "2026-11-19 15:00", *EMAIL)  # recorded after the build
    world.commit()
    nightly = runner.invoke(main, [*args[:4], "--from", "2026-11-22", "--to", "2026-11-22"])
    assert nightly.exit_code == 0, nightly.output
    assert "Rebuilt 4 earlier day(s)" in nightly.output  # from the late visit's day to the last built
    session.expire_all()
    revenue_20th = session.scalars(select(ReportRollup.revenue_last_click).where(
        ReportRollup.day == date(2026, 11, 20))).all()
    assert sum(revenue_20th) == 0
    cov = rollups.coverage(session, site, date(2026, 11, 19), date(2026, 11, 22))
    assert not cov.stale and cov.traffic_current
    result = report(session, site, **{"from": "2026-11-19", "to": "2026-11-22"})
    assert (result["totals"]["revenue"], result["totals"]["sessions"]) == ("0.00", 2)


def test_days_built_on_different_nights_stay_current(session, sale):
    world, _ = sale
    rebuild(session, world.site, "2026-11-18", "2026-11-19")
    world.visit(world.visitor(), "2026-11-20 18:00", *EMAIL)  # the next day's visit, before its build
    world.commit()
    rebuild(session, world.site, "2026-11-20", "2026-11-20")
    cov = rollups.coverage(session, world.site, date(2026, 11, 18), date(2026, 11, 20))
    assert not cov.stale and cov.traffic_current


KEYS = [SMS, SMS_OFFER, EMAIL, DIRECT, ("postscript", "sms", "winback", "20off", "vip"),
        ("google", "cpc", "brand"), ("facebook", "paid_social", "retargeting", "video")]


def test_the_built_split_matches_the_live_one_for_every_model(session, world):
    """Many orders of two to six touches over several rows (direct ones too), one-touch orders,
    orders known only by their landing URL, refunds: every split model reads the same from the
    rollups as from the raw tables, to the cent and to the 1/10000 order."""
    import random

    rng = random.Random(5)
    for _ in range(60):
        person = world.person() if rng.random() < 0.3 else None
        devices = [world.visitor(person) for _ in range(2 if person else 1)]
        at = utc("2026-11-01 08:00").timestamp() + rng.randrange(20 * 86400)
        for _ in range(rng.randrange(1, 7)):
            stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            world.visit(rng.choice(devices), stamp, *rng.choice(KEYS))
            at += rng.randrange(600, 5 * 86400)
        stamp = datetime.fromtimestamp(at + 3601, UTC).strftime("%Y-%m-%d %H:%M:%S")
        order = world.order(stamp, f"{rng.randrange(500, 30000) / 100:.2f}", visitor=devices[-1],
                            person=person)
        if rng.random() < 0.2:
            world.refund(order, "3.33", stamp)
    for day in (3, 9, 15):
        world.order(f"2026-11-{day:02d} 12:00", "19.99",
                    landing_url="https://shop.example/?utm_source=klaviyo&utm_medium=sms&utm_campaign=vip")
    world.commit()
    args = {"from": "2026-11-01", "to": "2026-11-30"}
    live = {(model, by): report(session, world.site, model=model, by=by, **args)
            for model in ("last_click", "last_non_direct", "first_click", "linear", "position_based",
                          "time_decay") for by in ("source,medium,campaign,content,term", "channel")}
    rebuild(session, world.site, "2026-11-01", "2026-11-30")
    for model, by in live:
        built = report(session, world.site, model=model, by=by, **args)
        assert built["built_through"] == "2026-11-30"
        assert {**built, "built_through": None} == {**live[model, by], "built_through": None}, model


def test_each_day_and_key_is_one_rollup_row_when_a_local_day_comes_back():
    """The build writes a day's rollups while it splits the later orders. Where clocks go back across
    midnight, orders in time order can return to the day before for an hour: that day still gets one
    row per key, holding every order of it."""
    key = ("sms", "attentive", "sms", "welcome", "", "")
    other = ("email", "klaviyo", "email", "news", "", "")
    d = [date(2026, 11, day) for day in range(1, 6)]
    orders = [  # (id, local day, net minor units, new customer, touches, customer, time)
        (1, d[0], 1000, True, [(60, False, key)], 1, None),
        (2, d[1], 2000, True, [(60, False, key), (30, False, other)], 2, None),
        (3, d[0], 500, False, [(60, False, key)], 1, None),  # the hour the clocks gave back
        (4, d[1], 700, False, [(60, False, other)], 2, None),
        (5, d[3], 300, True, [], 5, None),
        (6, d[4], 100, True, [(60, False, key)], 6, None),
    ]
    rollup_rows, first_sales, sales = [], [], []
    build._split(1, orders, *(SimpleNamespace(write_row=rows.append)
                              for rows in (rollup_rows, first_sales, sales)))
    cells = [(row[1], row[3:9]) for row in rollup_rows]
    assert len(cells) == len(set(cells))
    revenue = {(row[1], row[3:9]): row[10] for row in rollup_rows}  # last click's revenue
    assert revenue == {(d[0], key): 1500, (d[1], other): 2700, (d[1], key): 0,
                       (d[3], credit.UNATTRIBUTED_KEY): 300, (d[4], key): 100}
    assert len(sales) == 6
