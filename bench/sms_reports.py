"""The SMS reports at scale: claims and cohorts JSON over 90 days, and the ROI report by click date.

    .venv/bin/python bench/sms_reports.py [--sessions 1000000] [--orders 30000] [--days 60]
        [--backends sqlite,postgresql,citus] [--requests 15] [--pg-url postgresql+psycopg://...]
        [--citus-url postgresql+psycopg://...]

For each backend: a fresh database, `tracker demo` (which fills its platforms' claims too), the
nightly build over every day of the demo and the 30 days before it, then the median latency of
`GET /api/reports/claims` and `GET /api/reports/cohorts` over varied 90-day ranges and models (no
two consecutive requests alike; the cohorts with horizons of 1, 7, 30 and 60 days, so that the
shorter ones are over and every customer's later orders are followed), and of
`GET /api/reports/roi?date_basis=click` for 30 days (always computed from the raw tables, so shown
for information). Target: claims and cohorts < 300 ms median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from report import BACKENDS, TRACKER, api_client, database_options, each_backend, fresh_database, run, settle

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("last_click", "linear", "first_click", "time_decay", "position_based", "last_non_direct")
BY = ("source,medium,campaign", "channel", "source", "channel,source,medium,campaign,content")
# Ranges that end in the last week have no default horizon (30 days and more) over yet, which would
# leave the customers' later orders unread: the cohorts requests ask for short horizons too, so that
# each follows every customer through the orders after the first sale.
COHORT_HORIZONS = "1,7,30,60"


def latency(env: dict[str, str], paths: list[str]) -> tuple[float, list[float]]:
    """Median seconds of GET `paths` in turn through the app (one warm-up first), and every timing."""
    client, headers = api_client(env)
    assert client.get(paths[-1], headers=headers).status_code == 200
    timings = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_data(as_text=True)
    return statistics.median(timings), timings


def requests(kind: str, last: date, count: int, days: int) -> list[str]:
    out = []
    for i in range(count):
        end = last - timedelta(days=i % 7)
        start = end - timedelta(days=days - 1)
        query = f"site=demo.example&from={start}&to={end}&model={MODELS[i % len(MODELS)]}"
        if kind == "cohorts":
            query += f"&by={BY[i % len(BY)]}&horizons={COHORT_HORIZONS}"
        if kind == "roi":
            query += "&date_basis=click"
        out.append(f"/api/reports/{kind}?{query}")
    return out


def bench(backend: str, args, workdir: Path) -> None:
    url, drop = fresh_database(backend, args, workdir)
    env = {**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": "bench-secret-key-0123456789",
           "TRACKER_INSTANCE_PATH": str(workdir / "instance"), "TRACKER_NIGHTLY": "0"}
    try:
        run([*TRACKER, "db", "upgrade"], env)
        demo_s, _, _ = run([*TRACKER, "demo", "--sessions", str(args.sessions), "--orders", str(args.orders),
                            "--days", str(args.days)], env)
        today = datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).date()
        # Every day the requests reach is built: their ranges end up to a week before yesterday.
        first = today - timedelta(days=max(args.days + 30, 90) + 8)
        build_s, _, _ = run([*TRACKER, "reports", "build", "--site", "demo.example",
                             "--from", first.isoformat(), "--to", today.isoformat()], env)
        settle(url)
        yesterday = today - timedelta(days=1)
        print(f"[{backend}] demo {args.sessions} sessions {demo_s:.1f} s; "
              f"build of {(today - first).days + 1} days {build_s:.2f} s")
        for kind, days in (("claims", 90), ("cohorts", 90), ("roi", 30)):
            median, timings = latency(env, requests(kind, yesterday, args.requests, days))
            label = f"GET /api/reports/{kind}" + (" by click date" if kind == "roi" else "")
            print(f"[{backend}] {label}, {len(timings)} varied {days}-day ranges: "
                  f"median {median * 1000:.0f} ms (min {min(timings) * 1000:.0f}, "
                  f"max {max(timings) * 1000:.0f})")
        print(f"[{backend}] load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        sys.stdout.flush()
    finally:
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgresql", help=f"any of {', '.join(BACKENDS)}")
    database_options(parser)
    each_backend(parser.parse_args(), bench)


if __name__ == "__main__":
    main()
