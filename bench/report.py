"""Report benchmark: demo data at scale, the nightly build against a one-scan floor, the JSON report.

    .venv/bin/python bench/report.py [--sessions 1000000] [--orders 30000] [--days 60] [--seed 7]
        [--backends sqlite,postgresql,citus] [--trials 3]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--citus-url postgresql+psycopg://postgres@127.0.0.1:9700/postgres]

For each backend: a fresh database, `tracker demo` of the history up to the day before yesterday,
VACUUM ANALYZE (what autovacuum does soon after a bulk load) and one warming floor scan; then
`--trials` times `tracker reports build` over the whole history (wall time and the child's peak
memory) followed by two floor scans (one GROUP BY scan of sessions by UTM source/medium/campaign
plus one of orders), compared as medians; and the median latency of `GET /api/reports/roi` over
varied 60-day and 30-day ranges and models inside the built days (no two consecutive requests alike).

Then the night after: one more day of new visitors' sessions and orders (a `--days`th of the demo's
volume, `tracker demo --append`) dated yesterday, and the nightly build of it as `tracker serve`'s
nightly job runs it (reports.nightly.run_site: yesterday, the earlier days that changed, the
retention; no email), timed inside its process; `--trials` times from the same morning (yesterday
not built, the history as built last night), each followed by two floor scans. The same build as
the command `tracker reports build` (no range) is timed too: its wall time includes the
interpreter's start and imports, also printed.

The backends: `sqlite` (a file in a temporary folder), `postgresql` (a database created beside
`--pg-url`'s) and `citus` (a database created on the whole cluster whose coordinator `--citus-url`
names: on every node, with the extension, the workers added; `tracker db upgrade` distributes its
tables). Each is dropped after its run; the URLs' own databases are only read. On Citus the floor
scans every shard and merges on the coordinator, and the demo's one site lives on one shard: on one
machine its figures show the cluster's overhead, not a speed-up.

Targets: build <= 10x floor, yesterday's nightly build <= 1x floor, peak < 500 MB, demo of 1M
sessions < 2 min on PostgreSQL, JSON report < 150 ms median (on PostgreSQL and on Citus).
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
TRACKER = [sys.executable, "-m", "tracker"]
REPORT_REQUESTS = 15


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; returns (seconds, peak MB of that child, stdout)."""
    started = perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed with status {proc.returncode}:\n{out}")
    return seconds, usage.ru_maxrss / 1024, out


# The database servers: where each run creates a database of its own, and drops it after.
SERVERS = {  # backend: (option, environment variable, default)
    "postgresql": ("--pg-url", "TRACKER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "citus": ("--citus-url", "TRACKER_BENCH_CITUS_URL", "postgresql+psycopg://postgres@127.0.0.1:9700/postgres"),
}
BACKENDS = ("sqlite", *SERVERS)


def compiled(tree: Path) -> None:
    """The tree's own modules compiled to bytecode, as an installed tracker has them (pip compiles
    at install, the Docker image at build). Where PYTHONDONTWRITEBYTECODE is set and nothing compiled
    them, each command would compile the tracker's modules anew: about 0.1 s of every start."""
    for package in ("tracker", "reports", "migrations"):
        compileall.compile_dir(tree / package, quiet=1)


def each_backend(args, bench) -> None:
    """`bench(backend, args, workdir)` for each of `--backends` in turn, sharing one temporary folder."""
    sys.path.insert(0, str(ROOT))
    compiled(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            bench(backend.strip(), args, Path(tmp))


def database_options(parser: argparse.ArgumentParser) -> None:
    """--pg-url and --citus-url (a Citus coordinator): a database on each server, only read, beside
    which each run creates its own."""
    for option, variable, default in SERVERS.values():
        parser.add_argument(option, default=os.environ.get(variable, default),
                            help=f"default: ${variable} or %(default)s")


def fresh_database(backend: str, args, workdir: Path) -> tuple[str, callable]:
    """A new, empty database for one run on `backend`, and the function that drops it. On Citus it is
    a database of the whole cluster (tracker.citus.create_database: on every node, with the extension
    and the workers), so that `tracker db upgrade` distributes its tables."""
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: None
    if backend not in SERVERS:
        raise SystemExit(f"unknown backend {backend!r}: choose among {', '.join(BACKENDS)}")
    from tracker import citus

    option, variable, _ = SERVERS[backend]
    admin = getattr(args, option[2:].replace("-", "_"))
    engine = create_engine(admin)
    with engine.connect() as conn:
        on_citus = citus.installed(conn)
    engine.dispose()
    if on_citus != (backend == "citus"):
        raise SystemExit(f"{option} (or ${variable}) {make_url(admin).render_as_string()} "
                         + ("has no citus extension in its database: give a Citus coordinator "
                            "(.ci/citus-cluster starts one)" if backend == "citus" else
                            "is a Citus coordinator: give it as --citus-url to the citus backend"))
    name = f"tracker_bench_{uuid.uuid4().hex[:8]}"
    url = citus.create_database(admin, name)
    return url, lambda: citus.drop_database(admin, name)


def settle(url: str) -> None:
    """Leave the tables as autovacuum would shortly after a bulk load (vacuumed, analysed). On Citus
    the coordinator sends the VACUUM ANALYZE on to every worker."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    engine.dispose()


def floor_seconds(url: str) -> float:
    """The floor: one GROUP BY scan of every session by UTM source/medium/campaign, plus one of the
    orders by status. On Citus the groups are counted on every shard and merged on the coordinator:
    the cost of reading the raw tables once on that cluster, which is what the build is held to."""
    engine = create_engine(url)
    with engine.connect() as conn:
        started = perf_counter()
        conn.execute(text(
            "SELECT utm_source, utm_medium, utm_campaign, COUNT(*) FROM sessions "
            "GROUP BY utm_source, utm_medium, utm_campaign"
        )).all()
        conn.execute(text("SELECT status, COUNT(*), SUM(total_minor) FROM orders GROUP BY status")).all()
        seconds = perf_counter() - started
    engine.dispose()
    return seconds


# The nightly job's build of yesterday for the demo site, timed inside the process as `tracker serve`
# runs it (its imports and connection pool are already there): prints the seconds.
NIGHTLY_ONCE = """
from time import perf_counter
from datetime import timedelta
from sqlalchemy import select
from sqlalchemy.orm import Session
from reports.nightly import run_site
from tracker.config import Config
from tracker.days import site_today
from tracker.db import make_engine
from tracker.models import Site

config = Config.from_mapping()
engine = make_engine(config.database_url, config.waits)
with engine.connect() as warm:  # a serving process has its pool's connections open
    warm.exec_driver_sql("SELECT 1")
with Session(engine, expire_on_commit=False) as session:
    site = session.scalar(select(Site).where(Site.domain == "demo.example"))
    session.rollback()
    started = perf_counter()
    run_site(session, engine, site, site_today(site) - timedelta(days=1), config)
    print(perf_counter() - started)
engine.dispose()
"""


def report_ranges(first: date, last: date) -> list[tuple[str, date, date, str]]:
    """Varied requests inside the built days: 60-day and 30-day windows at different offsets, models
    cycling, so that no two consecutive requests are the same query."""
    models = ("last_click", "linear", "time_decay", "first_click", "position_based", "last_non_direct")
    requests = []
    for i in range(REPORT_REQUESTS):
        for days in (60, 30):
            slack = (last - first).days + 1 - days
            if slack < 0:
                continue
            start = first + timedelta(days=(i * 7) % (slack + 1))
            requests.append((f"{days}d", start, start + timedelta(days=days - 1), models[i % len(models)]))
    return requests


def api_client(env: dict[str, str]):
    """The app on `env` as a test client, and the headers of a new API token for it."""
    from tracker.app import create_app
    from tracker.credentials import hash_token, new_token
    from tracker.db import session_factory
    from tracker.models import ApiToken

    app = create_app(env)
    token = new_token()
    with session_factory(app)() as session:
        session.add(ApiToken(name=f"bench-{token[:8]}", token_hash=hash_token(token), prefix=token[:8]))
        session.commit()
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def report_latency(env: dict[str, str], first: date, last: date) -> dict[str, float]:
    """Median latency of GET /api/reports/roi per window length, over varied ranges and models."""
    client, headers = api_client(env)
    client.get(f"/api/reports/roi?site=demo.example&from={first}&to={last}", headers=headers)  # warm up
    timings: dict[str, list[float]] = {}
    for label, date_from, date_to, model in report_ranges(first, last):
        url = f"/api/reports/roi?site=demo.example&from={date_from}&to={date_to}&model={model}"
        started = perf_counter()
        response = client.get(url, headers=headers)
        timings.setdefault(label, []).append(perf_counter() - started)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["built_through"] == last.isoformat()
    return {label: statistics.median(values) for label, values in timings.items()}


def bench(backend: str, args, workdir: Path) -> None:
    url, drop = fresh_database(backend, args, workdir)
    env = {**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": "bench-secret-key-0123456789",
           "TRACKER_INSTANCE_PATH": str(workdir / "instance")}
    try:
        run([*TRACKER, "db", "upgrade"], env)
        today = datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).date()
        yesterday = today - timedelta(days=1)
        last = yesterday - timedelta(days=1)  # the history ends where yesterday begins
        demo_s, demo_mb, _ = run([*TRACKER, "demo", "--sessions", str(args.sessions), "--orders",
                                  str(args.orders), "--days", str(args.days), "--seed", str(args.seed),
                                  "--until", last.isoformat()], env)
        first = last - timedelta(days=args.days)
        date_from, date_to = first.isoformat(), last.isoformat()
        build_args = ["reports", "build", "--site", "demo.example", "--from", date_from, "--to", date_to]
        settle(url)
        first_floor_s = floor_seconds(url)  # the first scan after a bulk load also warms the cache
        # The build is idempotent: each trial rewrites the same rollups. Build and floor trials
        # alternate, so that a slow or fast phase of the machine weighs on both alike.
        builds, floors, peak_mb = [], [], 0.0
        for _ in range(args.trials):
            build_s, build_mb, _ = run([*TRACKER, *build_args], env)
            builds.append(build_s)
            peak_mb = max(peak_mb, build_mb)
            floors.extend(floor_seconds(url) for _ in range(2))
        build_s, floor_s = statistics.median(builds), statistics.median(floors)
        latency = report_latency(env, first, last)
        print(f"[{backend}] demo {args.sessions} sessions: {demo_s:.1f} s (peak {demo_mb:.0f} MB)")
        print(f"[{backend}] build {date_from}..{date_to}: median {build_s:.2f} s of {len(builds)} "
              f"({', '.join(f'{b:.2f}' for b in builds)}; peak {peak_mb:.0f} MB)")
        print(f"[{backend}] floor (GROUP BY sessions + orders): median {floor_s:.2f} s of {len(floors)} "
              f"({', '.join(f'{f:.2f}' for f in floors)}; first scan after the load: {first_floor_s:.2f} s)")
        per_trial = (b / statistics.median(floors[2 * i:2 * i + 2]) for i, b in enumerate(builds))
        print(f"[{backend}] build/floor = {build_s / floor_s:.1f}x (medians; per trial "
              f"{', '.join(f'{r:.1f}x' for r in per_trial)})")
        for label, median in latency.items():
            print(f"[{backend}] GET /api/reports/roi, {REPORT_REQUESTS} varied {label} ranges: "
                  f"median {median * 1000:.0f} ms")
        sys.stdout.flush()
        night_after(backend, args, env, url, yesterday)
        print(f"[{backend}] load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        sys.stdout.flush()
    finally:
        drop()


class Morning:
    """The morning after yesterday: the history as built last night, shortly after yesterday began,
    then yesterday's new sessions and orders (a `--days`th of the demo's volume), not built yet."""

    def __init__(self, args, env: dict[str, str], url: str, yesterday: date):
        self.url, self.yesterday = url, yesterday
        zone = ZoneInfo("America/New_York")
        self.last_night = datetime.combine(yesterday, time(1, 15), zone).astimezone(UTC)
        engine = create_engine(url)
        with engine.connect() as conn:
            self.mark = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM sessions")).scalar()
        engine.dispose()
        self.added_s = run([*TRACKER, "demo", "--append", "--days", "1", "--until", yesterday.isoformat(),
                            "--sessions", str(args.sessions // args.days), "--orders",
                            str(args.orders // args.days), "--seed", str(args.seed + 1)], env)[0]
        self.reset()

    def reset(self) -> None:
        """Back to the morning: yesterday not built, every earlier day as built last night."""
        from sqlalchemy import delete, update

        from reports.models import ReportBuild, ReportRollup, ReportSessions, ReportVisitors

        engine = create_engine(self.url)
        with engine.begin() as conn:
            for table in (ReportBuild, ReportRollup, ReportSessions, ReportVisitors):
                conn.execute(delete(table).where(table.day >= self.yesterday))
            conn.execute(update(ReportBuild).values(built_at=self.last_night, sessions_mark=self.mark))
        engine.dispose()


def nightly_seconds(env: dict[str, str], cwd: Path = ROOT) -> float:
    """One nightly build of yesterday inside its process (NIGHTLY_ONCE), in seconds."""
    return float(subprocess.run([sys.executable, "-c", NIGHTLY_ONCE], env=env, cwd=cwd, check=True,
                                capture_output=True, text=True).stdout.strip().splitlines()[-1])


def night_after(backend: str, args, env: dict[str, str], url: str, yesterday: date) -> None:
    """Yesterday's new sessions and orders, then the nightly build of them against the floor: each
    trial from the same morning, alternating with the floor."""
    morning = Morning(args, env, url, yesterday)
    nightly, commands, floors = [], [], []
    for _ in range(args.trials):
        morning.reset()
        nightly.append(nightly_seconds(env))
        morning.reset()
        commands.append(run([*TRACKER, "reports", "build", "--site", "demo.example"], env)[0])
        floors.extend(floor_seconds(url) for _ in range(2))
    start_s = statistics.median(run([*TRACKER, "reports", "build", "--help"], env)[0] for _ in range(3))
    floor_s = statistics.median(floors)
    nightly_s, command_s = statistics.median(nightly), statistics.median(commands)
    print(f"[{backend}] yesterday ({yesterday}): {args.sessions // args.days} sessions and about "
          f"{args.orders // args.days} orders appended in {morning.added_s:.1f} s")
    print(f"[{backend}] yesterday's nightly build (in the serving process, as `tracker serve` runs it): "
          f"median {nightly_s:.3f} s of {len(nightly)} ({', '.join(f'{n:.3f}' for n in nightly)})")
    print(f"[{backend}] floor median {floor_s:.3f} s of {len(floors)} "
          f"({', '.join(f'{f:.3f}' for f in floors)}): yesterday/floor = {nightly_s / floor_s:.2f}x")
    print(f"[{backend}] `tracker reports build` of yesterday: median {command_s:.2f} s "
          f"({', '.join(f'{c:.2f}' for c in commands)}) = {command_s / floor_s:.1f}x floor, of which "
          f"starting the command (`tracker reports build --help`) {start_s:.2f} s")


def decay_tables_figure() -> str:
    """reports.attribution's time-decay tables as computed against each entry by its definition."""
    from reports.attribution import decay_fixed, decay_tables

    started = perf_counter()
    high, low = decay_tables.__wrapped__()
    tables_s = perf_counter() - started
    started = perf_counter()
    [decay_fixed(i * len(low)) for i in range(len(high))], [decay_fixed(j) for j in range(len(low))]
    direct_s = perf_counter() - started
    return (f"time-decay tables (once per process): {tables_s * 1000:.1f} ms by multiplication, "
            f"{direct_s * 1000:.1f} ms entry by entry")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgresql", help=f"any of {', '.join(BACKENDS)}")
    parser.add_argument("--trials", type=int, default=3,
                        help="builds timed, each followed by two floor scans")
    database_options(parser)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    print(decay_tables_figure(), flush=True)
    each_backend(args, bench)


if __name__ == "__main__":
    main()
