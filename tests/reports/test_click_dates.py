"""`date_basis=click`: each credited share dated by its touch's session start, in the site's zone.

The site is in New York, where summer time ended on 2026-11-01 (UTC-4 before, UTC-5 after). The
range is 2026-10-31 to 2026-11-01, local. Worked out by hand:

- attentive visit 11-01 03:30 UTC (10-31 local), order 11-03: 100.00; in by click, out by order.
- postscript visit 11-02 04:30 UTC (11-01 local, after the clocks went back), order 11-02: 60.00;
  in by click, out by order.
- attentive visit 11-02 05:30 UTC (11-02 local), order 11-02 06:00: 40.00; out either way.
- klaviyo visit 10-30 03:30 UTC (10-29 local), order 10-31: 80.00; out by click, in by order.
- attentive visit 10-30 then postscript visit 10-31, order 11-01: 50.00; by click, last click
  gives postscript all of it and linear half (the attentive half falls before the range).
- an order with no visit, 11-01 15:00 UTC: 30.00, dated by itself; in either way.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from reports.roi import parse_report_query, revenue_by_day, roi_report
from tests.pages.conftest import EMAIL, PASSWORD, log_in
from tracker.credentials import hash_password
from tracker.errors import ReportQueryError
from tracker.models import Role, User

RANGE = {"from": "2026-10-31", "to": "2026-11-01", "by": "source"}


@pytest.fixture
def history(world):
    w = world
    for visit, source, order, total in (
        ("2026-11-01 03:30", "attentive", "2026-11-03 15:00", "100.00"),
        ("2026-11-02 04:30", "postscript", "2026-11-02 16:00", "60.00"),
        ("2026-11-02 05:30", "attentive", "2026-11-02 06:00", "40.00"),
        ("2026-10-30 03:30", "klaviyo", "2026-10-31 14:00", "80.00"),
    ):
        v = w.visitor()
        w.visit(v, visit, source, "sms", "welcome")
        w.order(order, total, visitor=v)
    two = w.visitor()
    w.visit(two, "2026-10-30 12:00", "attentive", "sms", "welcome")
    w.visit(two, "2026-10-31 12:00", "postscript", "sms", "welcome")
    w.order("2026-11-01 12:00", "50.00", visitor=two)
    w.order("2026-11-01 15:00", "30.00")
    w.commit()


def _revenue(session, site, **args):
    query = parse_report_query(session, {"site": site.public_id, **RANGE, **args})
    report = roi_report(session, query)
    session.rollback()
    return {row["source"]: row["revenue"] for row in report["rows"] if row["revenue"] != "0.00"}, report


def test_click_dates_credit_the_day_of_the_visit(session, site, history):
    by_click, report = _revenue(session, site, date_basis="click")
    assert by_click == {"attentive": "100.00", "postscript": "110.00", "(unattributed)": "30.00"}
    assert report["totals"]["revenue"] == "240.00" and report["date_basis"] == "click"
    by_order, report = _revenue(session, site)
    assert by_order == {"klaviyo": "80.00", "postscript": "50.00", "(unattributed)": "30.00"}
    assert report["totals"]["revenue"] == "160.00" and report["date_basis"] == "order"


def test_a_split_order_counts_only_the_shares_whose_visits_fall_in_the_range(session, site, history):
    linear, report = _revenue(session, site, date_basis="click", model="linear")
    assert linear == {"attentive": "100.00", "postscript": "85.00", "(unattributed)": "30.00"}
    assert report["totals"]["revenue"] == "215.00"
    assert sum(Decimal(v) for v in linear.values()) == Decimal(report["totals"]["revenue"])
    # Full impact: every touched row the whole order; the total counts each order once.
    full, report = _revenue(session, site, date_basis="click", model="full_impact")
    assert full == {"attentive": "100.00", "postscript": "110.00", "(unattributed)": "30.00"}
    assert report["totals"]["revenue"] == "240.00"


def test_daily_revenue_by_click_follows_local_midnight(session, site, history):
    query = parse_report_query(session, {"site": site.public_id, **RANGE, "date_basis": "click"})
    days = revenue_by_day(session, query, "source")
    assert {source: {d.isoformat(): str(v) for d, v in per.items()} for source, per in days.items()} == {
        "attentive": {"2026-10-31": "100.00"},
        "postscript": {"2026-10-31": "50.00", "2026-11-01": "60.00"},
        "(unattributed)": {"2026-11-01": "30.00"},
    }


def test_an_unknown_date_basis_is_refused(session, site):
    with pytest.raises(ReportQueryError, match="date_basis"):
        parse_report_query(session, {"site": site.public_id, "date_basis": "ship"})


def test_the_page_says_what_click_dates_mean_and_links_keep_them(client, session, site, history):
    session.add(User(email=EMAIL, password_hash=hash_password(PASSWORD), role=Role.ADMIN))
    session.commit()
    assert log_in(client).status_code == 302
    params = {"site": site.public_id, **RANGE, "date_basis": "click"}
    html = client.get("/reports/roi", query_string=params).get_data(as_text=True)
    assert "Dated by click" in html and "orders placed after Nov 01" in html
    assert '<option value="click" selected>' in html
    assert "date_basis=click" in html  # the CSV and comparison links keep the basis
    csv_response = client.get("/reports/roi.csv", query_string=params)
    assert "by-click" in csv_response.headers["Content-Disposition"]
    (postscript,) = [line for line in csv_response.get_data(as_text=True).splitlines()
                     if line.startswith("postscript,")]
    assert "110.00" in postscript.split(",")
    compare = client.get("/reports/compare", query_string=params).get_data(as_text=True)
    assert "Dated by click" in compare and "$110.00" in compare and "$85.00" in compare
    plain = client.get("/reports/roi", query_string={**params, "date_basis": "order"}).get_data(as_text=True)
    assert "Dated by click" not in plain
