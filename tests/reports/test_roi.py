"""The ROI report on hand-computed scenarios: models, lookbacks, people on two devices, refunds,
local midnight, spend, and rollups that answer exactly like the raw tables."""

from decimal import Decimal

import pytest

from reports import build, rollups
from reports.roi import ReportQueryError, parse_report_query, revenue_by_day, roi_report

SMS = ("attentive", "sms", "welcome")
GOOGLE = ("google", "organic", "(not set)")
DIRECT = ("(direct)", "(none)", "(not set)")
FACEBOOK = ("facebook", "paid_social", "prospecting")
LANDING = ("postscript", "sms", "black-friday")
NONE = ("(unattributed)",) * 3


@pytest.fixture
def story(world):
    """One shopper on a phone and a laptop; times are UTC, the store is in New York (UTC-5)."""
    person = world.person()
    phone, laptop = world.visitor(person), world.visitor(person)
    world.visit(phone, "2026-10-15 15:00", *FACEBOOK)  # 36 days before the order
    world.visit(phone, "2026-11-10 15:00", *SMS)  # 10 days before
    world.visit(laptop, "2026-11-19 16:00", "google", "organic")  # 23 hours before
    world.visit(laptop, "2026-11-20 14:50")  # direct, 10 minutes before
    order = world.order("2026-11-20 15:00", "100.00", visitor=laptop, person=person)
    world.refund(order, "10.00", "2026-11-22 10:00")
    # 04:30 UTC on the 20th is 23:30 on the 19th in New York.
    world.order("2026-11-20 04:30", "20.00")
    world.order("2026-11-20 16:00", "500.00", visitor=laptop, status="cancelled")
    world.order("2026-11-20 16:00", "700.00", visitor=laptop, test=True)
    world.order("2026-11-20 17:00", "300.00", visitor=phone, status="pending")
    world.order("2026-11-20 15:30", "50.00",
                landing_url="/products/x?utm_source=Postscript&utm_medium=SMS&utm_campaign=Black-Friday")
    world.cost("2026-11-20", "attentive", "sms", "welcome", "30.00")
    world.commit()
    return world


def report(session, site, **args):
    params = {"site": site.public_id, "from": "2026-11-20", "to": "2026-11-20", **args}
    return roi_report(session, parse_report_query(session, params))


def revenue(result) -> dict[tuple, str]:
    return {(r["source"], r["medium"], r["campaign"]): r["revenue"] for r in result["rows"]
            if r["revenue"] != "0.00"}


@pytest.mark.parametrize(
    ("model", "lookback", "expected"),
    [
        ("last_click", 30, {DIRECT: "90.00"}),
        ("last_non_direct", 30, {GOOGLE: "90.00"}),
        ("first_click", 30, {SMS: "90.00"}),
        ("first_click", 60, {FACEBOOK: "90.00"}),
        ("first_click", 1, {GOOGLE: "90.00"}),
        ("linear", 30, {SMS: "30.00", GOOGLE: "30.00", DIRECT: "30.00"}),
        ("linear", 60, {FACEBOOK: "22.50", SMS: "22.50", GOOGLE: "22.50", DIRECT: "22.50"}),
        ("linear", 1, {GOOGLE: "45.00", DIRECT: "45.00"}),
        ("position_based", 30, {SMS: "36.00", GOOGLE: "18.00", DIRECT: "36.00"}),
        ("position_based", 60, {FACEBOOK: "36.00", SMS: "9.00", GOOGLE: "9.00", DIRECT: "36.00"}),
        ("position_based", 1, {GOOGLE: "45.00", DIRECT: "45.00"}),
        ("time_decay", 30, {SMS: "14.66", GOOGLE: "35.90", DIRECT: "39.44"}),
        ("time_decay", 60, {FACEBOOK: "1.10", SMS: "14.48", GOOGLE: "35.46", DIRECT: "38.96"}),
        ("full_impact", 30, {SMS: "90.00", GOOGLE: "90.00", DIRECT: "90.00"}),
        ("full_impact", 60, {FACEBOOK: "90.00", SMS: "90.00", GOOGLE: "90.00", DIRECT: "90.00"}),
        ("last_click", 1, {DIRECT: "90.00"}),
    ],
)
def test_models_and_lookbacks(session, story, model, lookback, expected):
    result = report(session, story.site, model=model, lookback=str(lookback))
    # The landing-page order (no visitor matched) keeps its own touch in every model.
    assert revenue(result) == {**expected, LANDING: "50.00"}
    totals = result["totals"]
    assert totals["revenue"] == "140.00"  # 100 - 10 refunded + 50; cancelled, test, pending count zero
    assert totals["orders"] == "2.00"
    if model != "full_impact":
        assert sum(Decimal(r["revenue"]) for r in result["rows"]) == Decimal("140.00")


def test_an_order_belongs_to_its_local_day(session, story):
    day_before = report(session, story.site, **{"from": "2026-11-19", "to": "2026-11-19"})
    assert revenue(day_before) == {NONE: "20.00"}
    assert day_before["rows"][-1]["source"] == "(unattributed)"
    both = report(session, story.site, **{"from": "2026-11-19", "to": "2026-11-20"})
    assert both["totals"]["revenue"] == "160.00"


def test_rows_carry_metrics_and_spend(session, story):
    result = report(session, story.site, model="first_click")
    rows = {(r["source"], r["medium"], r["campaign"]): r for r in result["rows"]}
    sms = rows[SMS]
    assert (sms["revenue"], sms["cost"]) == ("90.00", "30.00")
    assert (sms["orders"], sms["new_customers"]) == ("1.00", "1.00")
    assert (sms["roi"], sms["roas"], sms["cpa"], sms["aov"]) == ("2.00", "3.00", "30.00", "90.00")
    assert sms["sessions"] == 0 and sms["conversion_rate"] is None  # the SMS visit was on the 10th
    direct = rows[DIRECT]
    assert (direct["sessions"], direct["visitors"], direct["roi"], direct["roas"]) == (1, 1, None, None)
    assert direct["conversion_rate"] == "0.0000"
    assert result["totals"]["cost"] == "30.00"
    assert result["totals"]["roi"] == str(((Decimal("140") - 30) / 30).quantize(Decimal("0.01")))
    assert result["currency"] == "USD" and result["model"] == "first_click" and result["lookback"] == 30


def test_channel_grouping_joins_spend_by_source_and_medium(session, story):
    result = report(session, story.site, by="channel", model="last_non_direct")
    rows = {r["channel"]: r for r in result["rows"]}
    assert rows["SMS"]["revenue"] == "50.00" and rows["SMS"]["cost"] == "30.00"
    assert rows["Organic Search"]["revenue"] == "90.00"


def test_spend_not_carrying_a_dimension_reads_not_set(session, story):
    result = report(session, story.site, by="source,content")
    rows = {(r["source"], r["content"]): r for r in result["rows"]}
    assert rows[("attentive", "(not set)")]["cost"] == "30.00"


def test_new_customers_count_a_persons_first_sale_only(session, world):
    person = world.person()
    phone, laptop = world.visitor(person), world.visitor(person)
    world.visit(phone, "2026-11-01 15:00", *SMS)
    world.order("2026-11-01 16:00", "10.00", visitor=phone, person=person)
    world.visit(laptop, "2026-11-20 15:00", *SMS)
    world.order("2026-11-20 16:00", "10.00", visitor=laptop)  # same person, through the laptop
    world.commit()
    result = report(session, world.site)
    assert result["totals"]["orders"] == "1.00" and result["totals"]["new_customers"] == "0.00"


def test_refund_of_everything_leaves_no_sale(session, world):
    visitor = world.visitor()
    world.visit(visitor, "2026-11-20 15:00", *SMS)
    order = world.order("2026-11-20 16:00", "80.00", visitor=visitor, status="refunded")
    world.refund(order, "80.00", "2026-11-21 09:00")
    world.commit()
    totals = report(session, world.site)["totals"]
    assert (totals["revenue"], totals["orders"]) == ("0.00", "0.00")


def test_daily_revenue_per_channel(session, story):
    query = parse_report_query(session, {"site": story.site.domain, "from": "2026-11-19", "to": "2026-11-20"})
    from datetime import date

    assert revenue_by_day(session, query, "channel") == {
        "Direct": {date(2026, 11, 20): Decimal("90.00")},
        "SMS": {date(2026, 11, 20): Decimal("50.00")},
        "(unattributed)": {date(2026, 11, 19): Decimal("20.00")},
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"model": "last_touch"}, "Unknown model"),
        ({"lookback": "0"}, "lookback"),
        ({"lookback": "366"}, "lookback"),
        ({"lookback": "7.5"}, "lookback"),
        ({"from": "2026-11-31"}, "'from' must be a date"),
        ({"from": "2026-11-21", "to": "2026-11-20"}, "after"),
        ({"by": "source,country"}, "Unknown dimension"),
        ({"site": "nope.example"}, "No site"),
    ],
)
def test_bad_parameters_are_sentences(session, site, args, message):
    params = {"site": site.public_id, "from": "2026-11-01", "to": "2026-11-20", **args}
    with pytest.raises(ReportQueryError, match=message):
        parse_report_query(session, params)


def test_rollups_answer_like_the_raw_tables_until_data_changes(session, story):
    site = story.site
    models = ("linear", "time_decay")
    before = {m: report(session, site, model=m, by="channel,source,campaign") for m in models}
    assert before["linear"]["built_through"] is None
    from datetime import date

    build.build_site(session, site, date(2026, 11, 19), date(2026, 11, 20))
    build.build_site(session, site, date(2026, 11, 19), date(2026, 11, 20))  # idempotent
    for model, expected in before.items():
        query = parse_report_query(session, {"site": site.public_id, "from": "2026-11-20", "to": "2026-11-20",
                                             "model": model, "by": "channel,source,campaign"})
        cov = rollups.coverage(session, site, query.date_from, query.date_to)
        assert cov.clean(query.date_from, query.date_to) == [query.date_from] and cov.traffic_current
        after = roi_report(session, query)
        assert after["built_through"] == "2026-11-20"
        assert {**after, "built_through": None} == expected
    # A late refund makes the rollups stale: the report notices and recomputes.
    order = story.order("2026-11-20 18:00", "40.00", visitor=story.visitor())
    story.refund(order, "15.00", "2026-11-21 09:00")
    story.commit()
    assert report(session, site)["totals"]["revenue"] == "165.00"


@pytest.mark.parametrize(("date_from", "sessions", "visitors"), [("2026-11-20", 1, 1), ("2026-11-10", 3, 2),
                                                                 ("2026-10-01", 4, 2)])
def test_sessions_and_visitors_count_visits_inside_the_range(session, story, date_from, sessions, visitors):
    totals = report(session, story.site, **{"from": date_from})["totals"]
    assert (totals["sessions"], totals["visitors"]) == (sessions, visitors)
