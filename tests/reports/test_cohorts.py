"""First-sale cohorts: a small store history over 200 days, worked out by hand.

Customers (site in New York; first sales in the range starting 200 days ago):
- A (a person): a Klaviyo email visit, then an Attentive SMS visit and a first order of 100.00;
  then 50.00 after 10 days, 30.00 after 45 days (10.00 refunded), 40.00 after 120 days.
  -> after 30 days 150.00, 60: 170.00, 90: 170.00, 180: 210.00.
- B (a visitor): Google CPC, first order 80.00; 20.00 after 20 days (refunded in full), 60.00 after 70.
  -> 80.00, 80.00, 140.00, 140.00.
- C (a visitor): a visit 40 days before their first order (outside the 30-day lookback), so the
  first order of 55.00 is unattributed; 45.00 five days later after a Postscript visit.
  -> 100.00 at every horizon, in the (unattributed) row although the second order came by SMS.
- D bought first before the range; their order inside it is no first sale.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from reports import build, bulk, cohorts
from reports.build import build_site
from reports.cohorts import cohorts_report, parse_horizons
from reports.models import ReportFirstSale, ReportRollup, ReportSale
from reports.roi import parse_report_query, roi_report
from tests.pages.conftest import EMAIL, PASSWORD, log_in
from tracker.credentials import hash_password
from tracker.days import site_today
from tracker.errors import ReportQueryError
from tracker.models import Order, Role, User
from tracker.waits import unanswered

HORIZONS = "30,60,90,180,365"


def _at(base: datetime, days: int, hour: int = 15, minute: int = 0) -> str:
    return (base + timedelta(days=days)).replace(hour=hour, minute=minute).strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def history(world):
    base = (datetime.now(UTC) - timedelta(days=200)).replace(second=0, microsecond=0)
    w = world
    a = w.visitor(person=w.person())
    w.visit(a, _at(base, -2), "klaviyo", "email", "newsletter")
    w.visit(a, _at(base, 0), "attentive", "sms", "welcome")
    w.order(_at(base, 0, minute=10), "100.00", visitor=a)
    w.order(_at(base, 10), "50.00", visitor=a)
    partly = w.order(_at(base, 45), "30.00", visitor=a)
    w.refund(partly, "10.00", _at(base, 50))
    w.order(_at(base, 120), "40.00", visitor=a)

    b = w.visitor()
    w.visit(b, _at(base, 1, 13), "google", "cpc", "brand")
    w.order(_at(base, 1, 13, 5), "80.00", visitor=b)
    refunded = w.order(_at(base, 21), "20.00", visitor=b, status="refunded")
    w.refund(refunded, "20.00", _at(base, 22))
    w.order(_at(base, 71), "60.00", visitor=b)

    c = w.visitor()
    w.visit(c, _at(base, -38))
    w.order(_at(base, 2, 16), "55.00", visitor=c)
    w.visit(c, _at(base, 7), "postscript", "sms", "winback")
    w.order(_at(base, 7, 15, 20), "45.00", visitor=c)

    d = w.visitor()
    w.visit(d, _at(base, -10), "attentive", "sms", "welcome")
    w.order(_at(base, -10, 15, 5), "70.00", visitor=d)
    w.order(_at(base, 3), "30.00", visitor=d)
    w.commit()
    first = base.astimezone(ZoneInfo(w.site.timezone)).date()
    return {"from": first.isoformat(), "to": (first + timedelta(days=9)).isoformat()}


@pytest.fixture
def marketer(client, session):
    session.add(User(email=EMAIL, password_hash=hash_password(PASSWORD), role=Role.ADMIN))
    session.commit()
    assert log_in(client).status_code == 302
    return client


def _report(session, site, dates, **args):
    horizons = parse_horizons(args.pop("horizons", HORIZONS))
    query = parse_report_query(session, {"site": site.public_id, **dates, **args})
    report = cohorts_report(session, query, horizons)
    session.rollback()
    return report


def _figures(row):
    per = row["revenue_per_customer"]
    return (row["customers"], row["first_order_revenue"], per["30"], per["60"], per["90"], per["180"],
            per["365"])


def test_customers_are_grouped_by_the_touch_credited_for_their_first_sale(session, site, history):
    report = _report(session, site, history, by="source")
    rows = {row["source"]: _figures(row) for row in report["rows"]}
    assert rows == {
        "attentive": ("1.00", "100.00", "150.00", "170.00", "170.00", "210.00", None),
        "google": ("1.00", "80.00", "80.00", "80.00", "140.00", "140.00", None),
        "(unattributed)": ("1.00", "55.00", "100.00", "100.00", "100.00", "100.00", None),
    }
    assert [row["source"] for row in report["rows"]][-1] == "(unattributed)"
    totals = report["totals"]
    assert _figures(totals) == ("3.00", "235.00", "110.00", "116.67", "136.67", "150.00", None)
    assert totals["first_order_value"] == "78.33"
    assert report["horizons"] == [30, 60, 90, 180, 365]


def test_a_split_model_shares_a_customer_and_the_totals_still_reconcile(session, site, history):
    report = _report(session, site, history, by="source", model="linear")
    rows = {row["source"]: _figures(row) for row in report["rows"]}
    assert rows["attentive"] == ("0.50", "50.00", "150.00", "170.00", "170.00", "210.00", None)
    assert rows["klaviyo"] == ("0.50", "50.00", "150.00", "170.00", "170.00", "210.00", None)
    assert sum(float(r["customers"]) for r in report["rows"]) == 3.0
    assert sum(int(r["first_order_revenue"].replace(".", "")) for r in report["rows"]) == 23500
    assert report["totals"]["first_order_revenue"] == "235.00"
    # Full impact gives A to both rows; the totals count each customer once.
    full = _report(session, site, history, by="source", model="full_impact")
    assert {r["source"]: r["customers"] for r in full["rows"]}["klaviyo"] == "1.00"
    assert _figures(full["totals"])[:3] == ("3.00", "235.00", "110.00")


def test_built_days_answer_exactly_as_the_raw_tables(session, site, history, monkeypatch):
    monkeypatch.setattr(cohorts, "IN_CHUNK", 1)  # the later orders' customers, one statement each
    live = {model: _report(session, site, history, by="source,campaign", model=model)
            for model in ("position_based", "linear")}
    first = datetime.fromisoformat(history["from"]).date()
    # Built through day 60 first: the later orders (days 71 and 120) of customers whose first sale
    # is built are read from the orders themselves; then built through day 130.
    for built_to in (60, 130):
        build_site(session, site, first - timedelta(days=45), first + timedelta(days=built_to))
        session.rollback()
        for model, expected in live.items():
            assert _report(session, site, history, by="source,campaign", model=model) == expected, built_to
    # A's order 120 days on is cancelled after the build: its day is recomputed, not read stale.
    late = session.scalar(select(Order).where(Order.total_minor == 4000))
    late.status, late.updated_at = "cancelled", datetime.now(UTC)
    session.commit()
    rows = {r["source"]: _figures(r) for r in _report(session, site, history, by="source")["rows"]}
    assert rows["attentive"] == ("1.00", "100.00", "150.00", "170.00", "170.00", "170.00", None)


def test_a_horizon_not_yet_over_is_empty_and_says_when_it_fills(client, site, world, token):
    v = world.visitor()
    at = datetime.now(UTC) - timedelta(days=40)
    world.visit(v, at.strftime("%Y-%m-%d %H:%M"), "attentive", "sms", "welcome")
    world.order((at + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M"), "25.00", visitor=v)
    world.commit()
    # Without dates: the 90 days of first sales that end 31 days ago.
    report = client.get("/api/reports/cohorts", query_string={"site": site.public_id, "horizons": "7,30,60"},
                        headers=token).get_json()
    (row,) = report["rows"]
    assert row["revenue_per_customer"] == {"7": "25.00", "30": "25.00", "60": None}
    last = datetime.fromisoformat(report["to"]).date()
    assert report["complete_on"]["60"] == (last + timedelta(days=61)).isoformat()
    assert report["complete_on"]["30"] == site_today(site).isoformat()  # filled in today
    assert (last - datetime.fromisoformat(report["from"]).date()).days == 89


def test_bad_horizons_say_what_to_send(client, site, token):
    for raw in ("0", "30,abc", "9999", ",".join(str(n) for n in range(1, 11))):
        response = client.get("/api/reports/cohorts", query_string={"site": site.public_id, "horizons": raw},
                              headers=token)
        assert response.status_code == 400
        assert "'horizons'" in response.get_json()["error"]
    with pytest.raises(ReportQueryError):
        parse_horizons("-5")
    assert parse_horizons(" 90, 30,30 ") == (30, 90)


def test_the_api_page_and_csv_agree(marketer, site, history, token):
    client = marketer
    query = {"site": site.public_id, **history, "by": "source", "horizons": HORIZONS}
    body = client.get("/api/reports/cohorts", query_string=query, headers=token).get_json()
    assert body["totals"]["customers"] == "3.00"
    page = client.get("/reports/cohorts", query_string=query)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('<svg class="chart spark"') == 4  # one per row and the totals
    assert "not yet" in html and "$210.00" in html
    csv_text = client.get("/reports/cohorts.csv", query_string=query).get_data(as_text=True)
    lines = csv_text.splitlines()
    assert lines[0] == ("source,customers,first_order_revenue,first_order_value,revenue_per_customer_30d,"
                        "revenue_per_customer_60d,revenue_per_customer_90d,revenue_per_customer_180d,"
                        "revenue_per_customer_365d")
    assert "attentive,1.00,100.00,100.00,150.00,170.00,170.00,210.00," in lines
    assert lines[-1] == "(all customers),3.00,235.00,78.33,110.00,116.67,136.67,150.00,"
    bad = client.get("/reports/cohorts", query_string={**query, "horizons": "soon"})
    assert bad.status_code == 400 and "horizons" in bad.get_data(as_text=True)


@pytest.fixture
def built(session, site, history):
    """The history built once: the days built, the cohorts and ROI reports then, and the rows stored
    in the tables the build replaces on connections of their own (sales, first sales, rollups)."""
    first = datetime.fromisoformat(history["from"]).date()
    days = (first - timedelta(days=45), first + timedelta(days=130))
    build_site(session, site, *days)
    session.rollback()
    stored = _stored_rows(session)
    assert all(stored)
    return days, _reports(session, site, history), stored


def _reports(session, site, history) -> tuple:
    """What the marketer sees of the built days: the cohorts report and the ROI report's rows (read
    from the credit rollups)."""
    roi = roi_report(session, parse_report_query(session, {"site": site.public_id, **history,
                                                           "model": "time_decay"}))
    session.rollback()
    return _report(session, site, history, by="source", model="linear"), roi["rows"], roi["totals"]


def test_a_build_that_stops_half_way_leaves_what_was_built_as_it_was(session, site, history, built,
                                                                     monkeypatch):
    days, reports, stored = built

    orders_to_split = build.credit.orders_to_split

    def dropped_after_two(*args):  # the database goes away while the orders stream in
        for number, order in enumerate(orders_to_split(*args)):
            if number == 2:
                raise OperationalError("SELECT ...", {}, Exception("server closed the connection"))
            yield order

    monkeypatch.setattr(build.credit, "orders_to_split", dropped_after_two)
    with pytest.raises(OperationalError):
        build_site(session, site, *days)
    session.rollback()
    assert _stored_rows(session) == stored
    assert _reports(session, site, history) == reports


def _stored_rows(session) -> tuple[int, int, int]:
    counts = tuple(session.scalar(select(func.count()).select_from(table))
                   for table in (ReportSale, ReportFirstSale, ReportRollup))
    session.rollback()
    return counts


@pytest.mark.parametrize("lost", ["the orders' read", "the cohorts' writes"])
def test_a_connection_lost_during_a_build_is_a_database_that_did_not_answer(
    lost, database_backend, session, site, history, built, monkeypatch
):
    """The build stops with the error its retries know (never hanging on its own connection, never
    a driver's error), leaves what was built as it was, and the next run builds it."""
    if database_backend != "postgresql":
        pytest.skip("SQLite writes the build in one connection, in one transaction")
    days, reports, stored = built
    engine = session.get_bind()

    def terminate(pid: int) -> None:
        with engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")

    if lost == "the orders' read":
        orders_to_split = build.credit.orders_to_split

        def read(session_, *args):
            for number, order in enumerate(orders_to_split(session_, *args)):
                if number == 1:
                    terminate(session_.connection().connection.driver_connection.info.backend_pid)
                yield order

        monkeypatch.setattr(build.credit, "orders_to_split", read)
    else:
        copy = bulk._copy

        @contextmanager
        def lost_copy(cursor, table, columns, queued=False):
            with copy(cursor, table, columns, queued) as started:
                if table == ReportSale.__tablename__:
                    terminate(cursor.connection.info.backend_pid)
                yield started

        monkeypatch.setattr(bulk, "_copy", lost_copy)

    outcome = {}

    def run():
        try:
            build_site(session, site, *days)
        except Exception as error:  # noqa: BLE001 (the outcome under test)
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the build hung"
    error = outcome.get("error")
    assert isinstance(error, OperationalError) and unanswered(error), error
    session.rollback()
    monkeypatch.undo()
    assert _stored_rows(session) == stored
    assert _reports(session, site, history) == reports
    build_site(session, site, *days)
    session.rollback()
    assert _stored_rows(session) == stored
    assert _reports(session, site, history) == reports
