"""Erasing a person (`tracker people forget`) on demo data at scale, while page views keep arriving.

    .venv/bin/python bench/forget.py [--sessions 1000000] [--orders 30000] [--days 60] [--people 10]
        [--backends sqlite,postgresql] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each backend: a fresh database and `tracker demo`; then `--people` times, a buyer (a visitor
with an order) is erased with `tracker people forget demo.example --visitor KEY` while a thread
posts page views through the app's collector; printed: the command's wall time (Python's start
included) and the erasure itself (find + forget + commit, in process), as medians and maxima, with
what was erased, and the page views acknowledged meanwhile. Target: seconds at 1M sessions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import report as report_bench  # noqa: E402  (this folder's bench/report.py)

SECRET = "bench-secret-key-0123456789"
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def collect_meanwhile(url: str, stop: threading.Event, counts: list[int]) -> None:
    """Page views of new visitors through the collector (the Flask app, in this process)."""
    from tracker.app import create_app

    app = create_app({"TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": SECRET})
    client = app.test_client()
    n = 0
    while not stop.is_set():
        n += 1
        body = json.dumps({"site": "demo.example", "visitor": f"v_bench_{n}", "event": "pageview",
                           "url": "https://demo.example/?utm_source=attentive&utm_medium=sms"})
        status = client.post("/collect", data=body, headers={"User-Agent": BROWSER}).status_code
        counts[0 if status == 202 else 1] += 1
        time.sleep(0.005)


def bench(backend: str, args, workdir: Path) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tracker import privacy
    from tracker.db import begin_write, make_engine
    from tracker.models import Order, Site, Visitor

    url, drop = report_bench.fresh_database(backend, args, workdir)
    env = {**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": SECRET,
           "TRACKER_INSTANCE_PATH": str(workdir / "instance")}
    try:
        report_bench.run([*report_bench.TRACKER, "db", "upgrade"], env)
        demo_s, _, _ = report_bench.run([*report_bench.TRACKER, "demo", "--sessions", str(args.sessions),
                                         "--orders", str(args.orders), "--days", str(args.days)], env)
        report_bench.settle(url)
        engine = make_engine(url)
        with Session(engine) as db:
            buyers = list(db.scalars(
                select(Visitor.visitor_key).join(Order, Order.visitor_id == Visitor.id)
                .order_by(Order.id).limit(args.people * 2)))
        stop, counts = threading.Event(), [0, 0]
        collector = threading.Thread(target=collect_meanwhile, args=(url, stop, counts), daemon=True)
        collector.start()
        commands, erasures, lines = [], [], []
        for key in buyers[: args.people]:
            seconds, _, out = report_bench.run(
                [*report_bench.TRACKER, "people", "forget", "demo.example", "--visitor", key], env)
            commands.append(seconds)
            lines.append(out.strip())
        for key in buyers[args.people:]:
            started = time.perf_counter()
            with Session(engine) as db:
                begin_write(db)  # as the command does (on SQLite a reader cannot become the writer)
                site = db.scalar(select(Site).where(Site.domain == "demo.example"))
                privacy.forget(db, privacy.find_subject(db, site, SECRET, visitor=key))
                db.commit()
            erasures.append(time.perf_counter() - started)
        stop.set()
        collector.join()
        engine.dispose()
        print(f"[{backend}] demo {args.sessions} sessions, {args.orders} orders: {demo_s:.1f} s")
        print(f"[{backend}] `tracker people forget --visitor` (wall, Python start included): median "
              f"{statistics.median(commands):.2f} s, max {max(commands):.2f} s of {len(commands)}")
        median_ms, max_ms = statistics.median(erasures) * 1000, max(erasures) * 1000
        print(f"[{backend}] erasure in process (find, forget, commit): median {median_ms:.0f} ms, "
              f"max {max_ms:.0f} ms of {len(erasures)}")
        print(f"[{backend}] e.g. {lines[0]}")
        print(f"[{backend}] page views meanwhile: {counts[0]} acknowledged, {counts[1]} refused")
        sys.stdout.flush()
    finally:
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgresql")
    report_bench.database_options(parser)
    report_bench.each_backend(parser.parse_args(), bench)


if __name__ == "__main__":
    main()
