"""On Citus: where the tables live, and a worker added and the shards rebalanced while page views and
orders keep arriving at a running `tracker serve`, losing nothing it acknowledged.

These run when TRACKER_TEST_DATABASE_URL is a Citus coordinator (`.ci/citus-cluster`, the third pass
of `.ci/run`); elsewhere they skip.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from reports import credit
from reports.build import build_site
from reports.demo import generate
from reports.roi import ReportQuery, roi_report
from tests.conftest import TEST_SECRET_KEY
from tests.webhooks.conftest import ORDERS_SECRET, standard_headers
from tracker.citus import create_database, drop_database, workers
from tracker.cli import main
from tracker.collect import rows
from tracker.db import Base, make_engine
from tracker.migrate import upgrade
from tracker.models import Site
from tracker.sites import create_site

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / ".ci" / "citus-cluster"
NEW_WORKER = int(os.environ.get("CITUS_NEW_WORKER_PORT", "9703"))
SHARED = {"sites", "users", "user_sites", "api_tokens", "api_token_sites", "login_attempts"}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def on_citus(citus):
    if not citus:
        pytest.skip("needs a Citus coordinator as TRACKER_TEST_DATABASE_URL (start one: .ci/citus-cluster)")


def test_per_site_tables_are_sharded_by_site_together_and_shared_ones_on_every_node(on_citus, database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        placed = {name: (kind, column, group) for name, kind, column, group in conn.execute(text(
            "SELECT table_name::text, citus_table_type, distribution_column, colocation_id "
            "FROM citus_tables"))}
        keys = dict(conn.execute(text(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'p' AND connamespace = 'public'::regnamespace")).all())
    engine.dispose()
    assert set(placed) == set(Base.metadata.tables)
    per_site = set(Base.metadata.tables) - SHARED
    assert {name for name, (kind, *_) in placed.items() if kind == "reference"} == SHARED
    assert {name for name, (kind, column, _) in placed.items()
            if kind == "distributed" and column == "site_id"} == per_site
    assert len({placed[name][2] for name in per_site}) == 1  # co-located: a site's rows share a shard
    assert all("site_id" in keys[name] for name in per_site)


def test_a_database_upgraded_on_postgresql_moves_onto_citus_with_its_rows(on_citus, make_database,
                                                                          citus_workers, tmp_path):
    url = make_database("moved")
    coordinator = make_url(url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # as if the database had been restored from a plain PostgreSQL
        conn.execute(text("DROP EXTENSION citus"))
    env = {"TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": TEST_SECRET_KEY,
           "TRACKER_INSTANCE_PATH": str(tmp_path / "instance")}
    cli = CliRunner(env=env)
    assert cli.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert cli.invoke(main, ["demo", "--days", "5", "--sessions", "300", "--orders", "30"]).exit_code == 0
    counts = ("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM orders), "
              "(SELECT count(*) FROM sites)")
    with admin.connect() as conn:
        before = tuple(conn.execute(text(counts)).one())
        conn.execute(text("CREATE EXTENSION citus"))
        conn.execute(text("SELECT citus_set_coordinator_host(:h, :p)"),
                     {"h": coordinator.host, "p": coordinator.port or 5432})
        for host, port in citus_workers:
            conn.execute(text("SELECT citus_add_node(:h, :p)"), {"h": host, "p": port})
    upgraded = cli.invoke(main, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    with admin.connect() as conn:
        placed = conn.scalar(text("SELECT count(*) FROM citus_tables"))
        after = tuple(conn.execute(text(counts)).one())
        on_workers = conn.scalar(text("SELECT count(DISTINCT nodeport) FROM citus_shards "
                                      "WHERE table_name = 'sessions'::regclass"))
        # The shards holding the moved rows were analysed: the planners know them at once.
        analysed = conn.scalar(text(
            "SELECT count(*) FILTER (WHERE result::int > 0) FROM run_command_on_shards('sessions', "
            "$$SELECT count(*) FROM pg_stats WHERE tablename = '%s'$$)"))
        holding = conn.scalar(text(
            "SELECT count(*) FILTER (WHERE result::int > 0) FROM run_command_on_shards('sessions', "
            "$$SELECT count(*) FROM %s$$)"))
    admin.dispose()
    assert placed == len(Base.metadata.tables)
    assert after == before and before[0] > 0
    assert on_workers == len(citus_workers)
    assert analysed == holding > 0


def test_a_sites_build_and_reports_each_run_on_its_shard_alone(on_citus, runner, session, database_url):
    assert runner.invoke(main, ["demo", "--days", "10", "--sessions", "600", "--orders", "60", "--seed", "5"]
                         ).exit_code == 0
    site_id = session.scalar(text("SELECT id FROM sites WHERE domain = 'demo.example'"))
    # Citus then refuses any statement that would run on more than one shard.
    strict = make_url(database_url).update_query_dict(
        {"options": "-c citus.multi_task_query_log_level=error"})
    engine = make_engine(strict.render_as_string(hide_password=False))
    with Session(engine) as db:
        site = db.get(Site, site_id)
        last = date.today() - timedelta(days=1)
        first = last - timedelta(days=9)
        reports = []
        for by in (("source", "medium", "campaign"), ("channel",), ("content", "term")):
            reports.append(roi_report(db, ReportQuery(site, first, last, by=by)))  # from the raw rows
        db.rollback()
        assert build_site(db, site, first, last) == 10
        for by, live in zip((("source", "medium", "campaign"), ("channel",), ("content", "term")), reports,
                            strict=True):
            built = roi_report(db, ReportQuery(site, first, last, by=by))  # from the rollups
            assert built["rows"] == live["rows"] and built["totals"] == live["totals"]
        db.rollback()
    engine.dispose()
    assert reports[0]["totals"]["orders"] != "0.00"


def test_a_batch_of_one_sites_page_views_is_written_on_its_shard_alone(on_citus, session, site, database_url):
    # Citus refuses, on this connection, any statement that would run on more than one shard.
    strict = make_url(database_url).update_query_dict(
        {"options": "-c citus.multi_task_query_log_level=error"})
    engine = make_engine(strict.render_as_string(hide_password=False))
    seen = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    visitors = [(site.id, f"v{n}", seen, seen, None, None, None) for n in range(3)]
    with engine.connect() as conn:
        writer = rows.for_connection(conn.connection.dbapi_connection, "postgresql", per_site=True)
        ids, latest = writer.prepare(visitors)  # the visitors' upsert, then their latest sessions
        conn.rollback()
    engine.dispose()
    assert set(ids) == {(site.id, f"v{n}") for n in range(3)} and latest == {}


def test_a_live_report_follows_each_orders_visitors_on_shards_never_analysed(on_citus, make_database):
    # Right after a bulk load (a database moved onto Citus, an import) the shards have no statistics
    # until autovacuum gets to them. The orders-and-touches statement must still look up each
    # order's visitors, never walk the site's visits for every order (minutes on a large site).
    url = make_database("unanalysed")
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:  # as in the minute before autovacuum analyses the new rows
        for table in ("visitors", "persons", "sessions", "orders", "refunds"):
            conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    with Session(engine) as db:
        site = create_site(db, "fresh.example", timezone="America/New_York", currency="USD")
        db.commit()
        generate(db.connection(), site.id, days=20, sessions=30_000, orders=3_000, seed=11)
        db.commit()
        end = datetime.now(UTC)
        start = end - timedelta(days=20)
        cursor = db.connection().connection.driver_connection.cursor()
        cursor.execute("EXPLAIN (COSTS OFF) " + credit._JOINED_SQL[True],
                       {"site": site.id, "start": start, "end": end, "zone": site.timezone,
                        "window": timedelta(days=30)})
        plan = "\n".join(row[0] for row in cursor.fetchall())
        db.execute(text("SET LOCAL statement_timeout = '60s'"))  # a walk would take minutes
        orders = credit.credited_orders(db, site, start, end, 30)
        # The shards were indeed never analysed: no column statistics on any of them.
        statistics = db.scalar(text(
            "SELECT sum(result::int) FROM run_command_on_shards('sessions', "
            "$$SELECT count(*) FROM pg_stats WHERE tablename = '%s'$$)"))
    engine.dispose()
    # Each order's visits through its visitors, its person's visitors through the person.
    assert "visitor_id_started_at" in plan and "ix_sessions_site_id_started_at" not in plan, plan
    assert "person_id" in plan and "uq_visitors_site_id_visitor_key" not in plan, plan
    assert len(orders) > 2_500 and sum(1 for order in orders if order.touches) > 2_000
    assert statistics == 0


def test_a_database_created_on_the_cluster_spans_every_node_and_is_dropped_from_every_node(
        on_citus, citus_workers):
    admin = make_url(os.environ["TRACKER_TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    name = f"tracker_test_created_{uuid.uuid4().hex[:10]}"
    url = create_database(admin, name)
    try:
        upgrade(url)
        engine = create_engine(url)
        with engine.connect() as conn:
            assert workers(conn) == citus_workers
            placed = conn.scalar(text("SELECT count(*) FROM citus_tables"))
            nodes = conn.scalar(text("SELECT count(DISTINCT nodeport) FROM citus_shards "
                                     "WHERE table_name = 'sessions'::regclass"))
        engine.dispose()
        assert placed == len(Base.metadata.tables) and nodes == len(citus_workers)
    finally:
        drop_database(admin, name)
    for host, port in [(admin.host, admin.port), *citus_workers]:
        engine = create_engine(admin.set(host=host, port=port, database="postgres"))
        with engine.connect() as conn:
            assert not conn.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name})
        engine.dispose()


@pytest.fixture
def rebalanced_database(make_database):
    """A database of its own (its cluster gains a worker); the worker is stopped afterwards."""
    url = make_database("rebalance")
    yield url
    name = make_url(url).database
    for admin_url in (make_url(url).set(database="postgres"),
                      make_url(url).set(port=NEW_WORKER, database="postgres")):
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except OperationalError:  # the worker never started
            pass
        admin.dispose()
    subprocess.run([str(CLUSTER), "stop", str(NEW_WORKER)], check=False, capture_output=True, timeout=120)


def test_a_worker_added_and_rebalanced_under_traffic_loses_nothing(on_citus, rebalanced_database, tmp_path):
    url = rebalanced_database
    upgrade(url)
    env = {"TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": TEST_SECRET_KEY,
           "TRACKER_INSTANCE_PATH": str(tmp_path / "instance"), "TRACKER_NIGHTLY": "0"}
    cli = CliRunner(env=env)

    def run(*args: str, stdin: str | None = None) -> str:
        result = cli.invoke(main, list(args), input=stdin)
        assert result.exit_code == 0, result.output
        return result.output.strip().splitlines()[-1]

    # A site with two weeks of visits and orders, reported on; another receiving live traffic.
    run("demo", "--days", "14", "--sessions", "1500", "--orders", "120", "--seed", "3")
    live = run("sites", "add", "live.example")
    run("sites", "secret", live, "orders", ORDERS_SECRET)
    token = run("tokens", "add", "rebalance")
    demo = _site_id(url, "demo.example")
    last = date.today() - timedelta(days=1)
    span = {"site": demo, "from": (last - timedelta(days=13)).isoformat(), "to": last.isoformat()}

    with _served(env) as port:
        before = _report(port, token, span)
        assert before["totals"]["orders"] != "0.00"
        traffic = _Traffic(port, live)
        traffic.start()
        traffic.wait_for(pageviews=50, orders=10)
        moved = _add_worker_and_rebalance(url)
        acknowledged_during = (len(traffic.pageviews), len(traffic.orders))
        traffic.wait_for(pageviews=acknowledged_during[0] + 50, orders=acknowledged_during[1] + 10)
        traffic.stop()
        after = _report(port, token, span)
    run("reports", "build", "--site", demo, "--from", span["from"], "--to", span["to"])
    with _served(env) as port:
        built = _report(port, token, span)

    assert moved > 0  # shards now live on the new worker
    assert after == before and built["rows"] == before["rows"] and built["totals"] == before["totals"]
    stored_views, stored_orders = _stored(url, live)
    assert traffic.pageviews and traffic.orders
    assert set(stored_views) >= traffic.pageviews  # every acknowledged page view is stored...
    assert max(stored_views.values()) == 1  # ...once
    assert set(stored_orders) >= traffic.orders and max(stored_orders.values()) == 1
    print(f"\nrebalance: {moved} shards moved to the new worker; acknowledged {len(traffic.pageviews)} page "
          f"views and {len(traffic.orders)} orders ({acknowledged_during[0]} and {acknowledged_during[1]} "
          f"by the end of the rebalance), {traffic.refused} answered 503; stored {len(stored_views)} page "
          f"views and {len(stored_orders)} orders")


def _site_id(url: str, domain: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        public_id = conn.scalar(text("SELECT public_id FROM sites WHERE domain = :d"), {"d": domain})
    engine.dispose()
    return public_id


class _served:
    """`tracker serve` with two worker processes on the database, in a child process."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def __enter__(self) -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        code = f"from tracker.server import run; run('127.0.0.1:{self.port}', 2, 4)"
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, **self.env,
                                     PYTHONPATH=str(ROOT)), cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self.port
            except OSError:
                assert self.proc.poll() is None, "the server did not start"
                time.sleep(0.05)
        raise AssertionError("the server did not start")

    def __exit__(self, *_exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _report(port: int, token: str, span: dict) -> dict:
    query = "&".join(f"{k}={v}" for k, v in span.items())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/api/reports/roi?{query}", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, body
    return json.loads(body)


class _Traffic:
    """Page views and order webhooks sent without pause, each remembered once acknowledged."""

    def __init__(self, port: int, site: str):
        self.port, self.site = port, site
        self.pageviews: set[str] = set()
        self.orders: set[str] = set()
        self.refused = 0
        self.running = True
        self.threads = [threading.Thread(target=self._pageviews, args=(n,)) for n in range(2)]
        self.threads.append(threading.Thread(target=self._orders))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.running = False
        for thread in self.threads:
            thread.join()

    def wait_for(self, pageviews: int, orders: int) -> None:
        while len(self.pageviews) < pageviews or len(self.orders) < orders:
            assert all(t.is_alive() for t in self.threads)
            time.sleep(0.05)

    def _post(self, conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict) -> int:
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            return 0

    def _pageviews(self, worker: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        while self.running:
            n += 1
            page = f"https://live.example/p/{worker}-{n}?utm_source=attentive&utm_medium=sms"
            body = json.dumps({"site": self.site, "url": page, "referrer": "", "event": "pageview",
                               "visitor": f"visitor-{worker}-{n % 40}"}).encode()
            status = self._post(conn, "/collect", body, {"Content-Type": "text/plain", "User-Agent": BROWSER})
            if status == 202:
                self.pageviews.add(page)
            else:
                self.refused += 1
        conn.close()

    def _orders(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        while self.running:
            n += 1
            order = {"id": f"L-{n}", "created_at": "2026-12-01T12:00:00Z", "total": "12.50",
                     "currency": "USD", "status": "paid", "visitor": f"visitor-0-{n % 40}"}
            body = json.dumps(order).encode()
            status = self._post(conn, f"/webhooks/orders/{self.site}", body, standard_headers(body))
            if status == 200:
                self.orders.add(order["id"])
            else:
                self.refused += 1
        conn.close()


def _add_worker_and_rebalance(url: str) -> int:
    """Start one more Citus server, add it to the database's cluster, rebalance and wait; returns
    the shards of distributed tables that moved onto it."""
    subprocess.run([str(CLUSTER), "node", str(NEW_WORKER)], check=True, capture_output=True, timeout=300)
    name = make_url(url).database
    worker = make_url(url).set(port=NEW_WORKER, database="postgres")
    admin = create_engine(worker, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    fresh = create_engine(worker.set(database=name), isolation_level="AUTOCOMMIT")
    with fresh.connect() as conn:
        conn.execute(text("CREATE EXTENSION citus"))
    fresh.dispose()
    coordinator = create_engine(url, isolation_level="AUTOCOMMIT")
    with coordinator.connect() as conn:
        conn.execute(text("SELECT citus_add_node(:host, :port)"), {"host": worker.host, "port": NEW_WORKER})
        conn.execute(text("SELECT citus_rebalance_start()"))
        conn.execute(text("SELECT citus_rebalance_wait()"))
        moved = conn.scalar(text("SELECT count(*) FROM citus_shards WHERE nodeport = :port "
                                 "AND citus_table_type = 'distributed'"), {"port": NEW_WORKER})
    coordinator.dispose()
    return moved


def _stored(url: str, site: str) -> tuple[Counter, Counter]:
    """The live site's page views (stored, or still waiting in hits) and orders, counted by URL and id."""
    engine = create_engine(url)
    with engine.connect() as conn:
        site_id = conn.scalar(text("SELECT id FROM sites WHERE public_id = :p"), {"p": site})
        urls = conn.scalars(text("SELECT url FROM pageviews WHERE site_id = :s "
                                 "UNION ALL SELECT url FROM hits WHERE site_id = :s"), {"s": site_id}).all()
        orders = conn.scalars(text("SELECT external_id FROM orders WHERE site_id = :s"), {"s": site_id}).all()
    engine.dispose()
    return Counter(urls), Counter(orders)
