"""`tracker costs import`, `tracker reports build` and `tracker demo` as a user runs them."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from reports.claims import claims_report
from reports.links import link_visits
from reports.models import ReportBuild, ReportRollup
from reports.roi import parse_report_query
from tracker.cli import main
from tracker.days import local_day, site_today
from tracker.models import Cost, Order, Site, TrackedSession

HEADER = "date,source,medium,campaign,cost,content\n"


def write(tmp_path, text, name="spend.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def costs(session):
    session.expire_all()
    return sorted((str(c.date), c.source, c.medium, c.campaign, c.content, c.cost_minor)
                  for c in session.scalars(select(Cost)))


def test_import_normalises_keys_and_reimport_replaces(runner, session, site, tmp_path):
    first = write(tmp_path, HEADER + "2026-11-20, Attentive ,SMS,Welcome,12.50,10OFF\n"
                                     "2026-11-20,google,cpc,,40\n")
    result = runner.invoke(main, ["costs", "import", first, "--site", site.domain])
    assert result.exit_code == 0, result.output
    again = write(tmp_path, HEADER + "2026-11-20,attentive,sms,welcome,15.00,10off\n", "again.csv")
    assert runner.invoke(main, ["costs", "import", again]).exit_code == 0  # the only site
    assert costs(session) == [
        ("2026-11-20", "attentive", "sms", "welcome", "10off", 1500),
        ("2026-11-20", "google", "cpc", "", "", 4000),
    ]


def test_bad_lines_are_named_and_nothing_is_imported(runner, session, site, tmp_path):
    path = write(tmp_path, HEADER + "2026-11-20,attentive,sms,welcome,12.50,\n"
                                    "2026-13-01,attentive,sms,welcome,1,\n"
                                    "2026-11-21,,sms,welcome,1,\n"
                                    "2026-11-22,attentive,sms,welcome,12.505,\n"
                                    "2026-11-23,attentive,sms,welcome,1e30,\n"
                                    "2026-11-24,attentive,sms,welcome,99999999999999999999,\n")
    result = runner.invoke(main, ["costs", "import", path, "--site", site.public_id])
    assert result.exit_code == 1
    assert all(f"Line {n}:" in result.output for n in (3, 4, 5, 6, 7))
    assert "Line 7: cost '99999999999999999999': " in result.output and "larger than" in result.output
    assert "Line 2:" not in result.output
    assert "Traceback" not in result.output
    assert costs(session) == []


def test_missing_columns_and_files_are_one_sentence(runner, site, tmp_path):
    result = runner.invoke(main, ["costs", "import", write(tmp_path, "day,cost\n2026-11-20,1\n")])
    assert result.exit_code == 1 and "missing column(s) date, source, medium, campaign" in result.output
    missing = runner.invoke(main, ["costs", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "No file" in missing.output


def test_build_is_idempotent_and_reports_progress(runner, session, world):
    visitor = world.visitor()
    world.visit(visitor, "2026-11-19 15:00", "attentive", "sms", "welcome")
    world.order("2026-11-19 16:00", "25.00", visitor=visitor)
    world.commit()
    args = ["reports", "build", "--site", world.site.domain, "--from", "2026-11-18", "--to", "2026-11-20"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "Built 3 day(s)" in first.output

    def snapshot():
        session.expire_all()
        return sorted((str(r.day), r.source, r.units_last_click, r.revenue_last_click, r.revenue_linear)
                      for r in session.scalars(select(ReportRollup)))

    rows = snapshot()
    assert ("2026-11-19", "attentive", 10_000, 2500, 2500) in rows
    assert runner.invoke(main, args).exit_code == 0
    assert snapshot() == rows
    assert session.scalar(select(func.count()).select_from(ReportBuild)) == 3


def test_build_refuses_a_backwards_range(runner, site):
    result = runner.invoke(main, ["reports", "build", "--from", "2026-11-20", "--to", "2026-11-01"])
    assert result.exit_code == 1 and "after" in result.output
    result = runner.invoke(main, ["reports", "build", "--from", "2026-11-20", "--to", "9999-12-31"])
    assert result.exit_code == 1 and "--to 9999-12-31 is outside" in result.output
    assert "Traceback" not in result.output


def test_build_defaults_to_yesterday_for_every_site(runner, session, site):
    result = runner.invoke(main, ["reports", "build"])
    assert result.exit_code == 0, result.output
    assert "Built 1 day(s)" in result.output


def test_demo_fills_a_site_that_reports(runner, session):
    result = runner.invoke(main, ["demo", "--sessions", "3000", "--days", "10", "--seed", "7"])
    assert result.exit_code == 0, result.output
    site = session.scalar(select(Site).where(Site.domain == "demo.example"))
    assert result.output.strip().splitlines()[-1] == site.public_id
    assert session.scalar(select(func.count()).select_from(TrackedSession)) == 3000
    channels = set(session.scalars(select(TrackedSession.channel).distinct()))
    assert {"SMS", "Email", "Paid Search", "Organic Search", "Paid Social", "Direct"} <= channels
    assert session.scalar(select(func.count()).select_from(Order)) > 30
    # every visit is stored linked to its visitor's previous ones, as the collector stores them
    assert session.scalar(select(func.count()).where(TrackedSession.visits_linked.is_(False))) == 0
    assert link_visits(session, site.id, everything=True) == 0
    returning = select(func.count()).where(TrackedSession.prev_campaign_visit_at.is_not(None))
    assert session.scalar(returning) > 100
    session.rollback()
    # a rerun replaces the demo data instead of doubling it
    assert runner.invoke(main, ["demo", "--sessions", "3000", "--days", "10"]).exit_code == 0
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(TrackedSession)) == 3000


def test_demo_platforms_claim_more_than_their_visits_brought(runner, session):
    assert runner.invoke(main, ["demo", "--sessions", "4000", "--days", "10", "--seed", "3"]).exit_code == 0
    site = session.scalar(select(Site).where(Site.domain == "demo.example"))
    yesterday = site_today(site) - timedelta(days=1)
    query = parse_report_query(session, {"site": site.public_id, "to": yesterday.isoformat(),
                                         "from": (yesterday - timedelta(days=12)).isoformat()})
    report = claims_report(session, query)
    platforms = {row["platform"] for row in report["rows"]}
    assert platforms == {"attentive", "postscript", "klaviyo"}
    for platform in platforms:
        rows = [r for r in report["rows"] if r["platform"] == platform]
        claimed = sum(Decimal(r["claimed_revenue"]) for r in rows)
        tracked = sum(Decimal(r["tracked_revenue"]) for r in rows)
        assert claimed > tracked > 0, platform
        assert sum(r["clicks"] for r in rows) > sum(r["landed_sessions"] for r in rows)


def test_demo_appends_a_day_of_new_visits_and_orders(runner, session):
    zone = ZoneInfo("America/New_York")  # the demo site's
    yesterday = datetime.now(UTC).astimezone(zone).date() - timedelta(days=1)
    history = ["demo", "--sessions", "3000", "--days", "10", "--seed", "7", "--until", "2026-11-18"]
    assert runner.invoke(main, history).exit_code == 0
    added = runner.invoke(main, ["demo", "--append", "--days", "1", "--sessions", "300", "--orders", "40",
                                 "--until", str(yesterday)])
    assert added.exit_code == 0, added.output
    assert "Added to demo.example: 300 sessions" in added.output
    days = Counter(local_day(at, zone) for at in session.scalars(select(TrackedSession.started_at)))
    assert sum(days.values()) == 3300
    assert max(d for d in days if d != yesterday) == date(2026, 11, 18)
    assert days[yesterday] == 300
    orders = [local_day(at, zone) for at in session.scalars(select(Order.created_at))]
    assert orders.count(yesterday) > 10
    # the new visitors' visits are stored linked, as the collector stores them
    site = session.scalar(select(Site).where(Site.domain == "demo.example"))
    assert link_visits(session, site.id, everything=True) == 0
    session.rollback()
    later = runner.invoke(main, ["demo", "--append", "--until", str(yesterday + timedelta(days=2))])
    assert later.exit_code == 1 and "is after today" in later.output
