"""Report page benchmark: the ROI page over 30 days with 500 campaign rows, median server time.

    .venv/bin/python bench/pages.py [--campaigns 500] [--sessions 30000] [--orders 3000]
        [--requests 15] [--backends sqlite,postgresql,citus] [--pg-url URL] [--citus-url URL]
        [--unanalysed]

For each backend: a fresh database, a site with `--campaigns` SMS, email and ad campaigns
(sessions, matched paid orders and daily spend over 30 days), analysed as autovacuum leaves the
tables shortly after a load (or, with --unanalysed, as they are in the minute before autovacuum
reaches them: no statistics), then through the Flask test client as a logged-in user: GET
/reports/roi (by source, medium, campaign; last 30 days) before and after `tracker reports build`,
the CSV of the same view, and Mission Control. Prints the median and p90 server time of each;
target < 150 ms median for the ROI page. Figures only.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from report import BACKENDS, database_options, each_backend, fresh_database, settle  # bench/report.py
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
DAYS = 30
PASSWORD = "bench password 123"
SOURCES = (("attentive", "sms", "SMS"), ("postscript", "sms", "SMS"), ("klaviyo", "sms", "SMS"),
           ("klaviyo", "email", "Email"), ("google", "cpc", "Paid Search"),
           ("facebook", "paid_social", "Paid Social"))


def fill(app, campaigns: int, sessions: int, orders: int) -> str:
    """A site with `campaigns` distinct source/medium/campaign rows; returns its public id."""
    from tracker.credentials import hash_password
    from tracker.db import session_factory
    from tracker.models import Cost, Order, Role, TrackedSession, User, Visitor
    from tracker.sites import create_site

    rng = random.Random(7)
    now = datetime.now(UTC)
    keys = [(*SOURCES[i % len(SOURCES)], f"campaign-{i:03d}") for i in range(campaigns)]
    with session_factory(app)() as db:
        site = create_site(db, "bench.example", timezone="America/New_York", currency="USD")
        db.add(User(email="bench@shop.example", password_hash=hash_password(PASSWORD), role=Role.ADMIN))
        db.commit()
        visitors, rows = [], []
        for i in range(sessions):
            source, medium, channel, campaign = keys[i % campaigns]
            at = now - timedelta(days=rng.uniform(1, DAYS), minutes=rng.randint(0, 600))
            visitors.append({"id": i + 1, "site_id": site.id, "visitor_key": f"v{i}", "first_seen_at": at,
                             "last_seen_at": at})
            rows.append({"id": i + 1, "site_id": site.id, "visitor_id": i + 1, "started_at": at,
                         "last_seen_at": at, "pageviews": 2, "utm_source": source, "utm_medium": medium,
                         "utm_campaign": campaign, "utm_content": "(not set)", "utm_term": "(not set)",
                         "channel": channel})
        db.execute(insert(Visitor), visitors)
        db.execute(insert(TrackedSession), rows)
        buyers = rng.sample(rows, orders)
        db.execute(insert(Order), [
            {"site_id": site.id, "provider": "orders", "external_id": f"o{n}",
             "created_at": s["started_at"] + timedelta(minutes=9), "paid_at": s["started_at"],
             "status": "paid", "is_test": False, "currency": "USD", "total_minor": rng.randint(1500, 25000),
             "visitor_id": s["visitor_id"], "match_method": "visitor", "received_at": now, "updated_at": now}
            for n, s in enumerate(buyers)
        ])
        today = now.date()
        db.execute(insert(Cost), [
            {"site_id": site.id, "date": today - timedelta(days=d), "source": source, "medium": medium,
             "campaign": campaign, "content": "", "term": "", "currency": "USD",
             "cost_minor": rng.randint(100, 5000), "updated_at": now}
            for source, medium, _, campaign in keys for d in range(1, DAYS + 1)
        ])
        db.commit()
        return site.public_id


def logged_in_client(app):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": "bench@shop.example", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302, response.status_code
    return client


def timed(client, url: str | list[str], requests: int) -> tuple[float, float, int]:
    """(median ms, p90 ms, response bytes); the first request warms caches and is dropped.

    Given a list of URLs, the requests cycle through them (varied ranges and models)."""
    urls = [url] if isinstance(url, str) else url
    timings, size = [], 0
    for n in range(requests + 1):
        started = time.perf_counter()
        response = client.get(urls[n % len(urls)])
        body = response.get_data()
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        size = len(body)
    timings = sorted(timings[1:])
    return statistics.median(timings), timings[math.ceil(len(timings) * 0.9) - 1], size  # nearest rank


def report_alone(app, site_id: str, args) -> float:
    """The report computation without the page, to separate query time from rendering."""
    from reports.roi import parse_report_query, roi_report
    from tracker.db import session_factory

    with app.app_context(), session_factory(app)() as db:
        query = parse_report_query(db, {"site": site_id, "by": "source,medium,campaign"})
        timings = []
        for _ in range(args.requests + 1):
            started = time.perf_counter()
            roi_report(db, query)
            timings.append((time.perf_counter() - started) * 1000)
            db.rollback()
    return statistics.median(timings[1:])


def bench(backend: str, args, workdir: Path) -> None:
    from reports.build import build_site
    from tracker.app import create_app
    from tracker.days import site_today
    from tracker.db import session_factory
    from tracker.migrate import upgrade
    from tracker.sites import require_site

    url, drop = fresh_database(backend, args, workdir)
    try:
        upgrade(url)
        app = create_app({"TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": "bench-secret-key-0123456789",
                          "TRACKER_INSTANCE_PATH": str(workdir / "instance")})
        site_id = fill(app, args.campaigns, args.sessions, args.orders)
        if not args.unanalysed:  # as autovacuum leaves the tables a minute after the load
            settle(url)
        client = logged_in_client(app)
        roi = f"/reports/roi?site={site_id}&range=last30&by=source,medium,campaign"
        page = client.get(roi).get_data(as_text=True)
        rows = page.split("<tbody>")[1].count('<th scope="row">')
        print(f"[{backend}] ROI page rows shown: {rows}")
        live = timed(client, roi, args.requests)
        with session_factory(app)() as db:
            site = require_site(db, site_id)
            today = datetime.now(UTC).date()
            started = time.perf_counter()
            build_site(db, site, today - timedelta(days=DAYS + 1), today)
            print(f"[{backend}] reports build, {DAYS + 2} days: {time.perf_counter() - started:.1f} s")
        today_local = site_today(site)
        models = ("last_click", "linear", "time_decay", "first_click", "position_based")
        varied = [
            f"/reports/roi?site={site_id}&from={today_local - timedelta(days=30 + k)}"
            f"&to={today_local - timedelta(days=1 + k)}&model={models[k % len(models)]}"
            "&by=source,medium,campaign"
            for k in range(3)  # inside the built days
        ]
        for label, path in (
            ("GET /reports/roi (rollups)", roi),
            ("GET /reports/roi (rollups, 30 days at 3 offsets x 3 models)", varied),
            ("GET /reports/roi.csv (rollups)", roi.replace("/reports/roi?", "/reports/roi.csv?")),
            ("GET / Mission Control", f"/?site={site_id}"),
        ):
            median, p90, size = timed(client, path, args.requests)
            print(f"[{backend}] {label}: median {median:.0f} ms, p90 {p90:.0f} ms, {size // 1024} KiB")
        print(f"[{backend}] roi_report() alone, same query: median {report_alone(app, site_id, args):.0f} ms")
        print(f"[{backend}] GET /reports/roi (before build, live credit): median {live[0]:.0f} ms, "
              f"p90 {live[1]:.0f} ms")
        sys.stdout.flush()
        from tracker.db import get_engine

        get_engine(app).dispose()
    finally:
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--campaigns", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=30_000)
    parser.add_argument("--orders", type=int, default=3_000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--unanalysed", action="store_true",
                        help="read the reports right after the load, before any ANALYZE")
    parser.add_argument("--backends", default="sqlite,postgresql", help=f"any of {', '.join(BACKENDS)}")
    database_options(parser)
    each_backend(parser.parse_args(), bench)


if __name__ == "__main__":
    main()
