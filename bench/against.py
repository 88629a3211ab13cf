"""This checkout against another one (an earlier commit in a git worktree), alternately in one run:
the collector's throughput and the nightly build and JSON report, on SQLite and PostgreSQL.

    git worktree add --detach ../before <commit>
    .venv/bin/python bench/against.py --other ../before [--what collector,report]
        [--backends sqlite,postgresql] [--seconds 8] [--rounds 3] [--sessions 300000] [--trials 3]

Each figure is measured for both trees in turns (A B, then B A for the report), so a slow or fast
phase of the machine weighs on both alike, and is printed with the ratio this/other. The
collector: each tree's `tracker serve` settings (`tracker.server.options`) under wrk, as
bench/collector.py loads it. The report: one demo database (written by this tree; the schema is
the same), then each tree's `tracker reports build` over the whole range, and each tree's median
latency of `GET /api/reports/roi` over bench/report.py's varied ranges, then (bench/report.py's night
after) each tree's nightly build of one more day, from the same morning each time. Figures only, no
assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import collector as collector_bench  # noqa: E402  (this folder's bench/collector.py)
import report as report_bench  # noqa: E402

SECRET = "bench-secret-key-0123456789"


def _env(tree: Path, url: str, workdir: Path) -> dict[str, str]:
    return {**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": SECRET,
            "TRACKER_INSTANCE_PATH": str(workdir / "instance"), "TRACKER_NIGHTLY": "0",
            "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "bench")])}


def _start(tree: Path, port: int, env: dict) -> subprocess.Popen:
    code = (f"from tracker.server import run; run('127.0.0.1:{port}', {collector_bench.WORKERS}, "
            f"{collector_bench.THREADS})")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tree, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    collector_bench._wait_port(port)
    time.sleep(1.0)
    return proc


def _line(label: str, this: list[float], other: list[float], unit: str, higher_is_better: bool) -> str:
    a, b = statistics.median(this), statistics.median(other)
    better = "higher is better" if higher_is_better else "lower is better"
    return (f"  {label:<34} this {a:9.2f} {unit}  other {b:9.2f} {unit}  this/other {a / b:5.3f}  ({better}; "
            f"medians of {len(this)}: {', '.join(f'{x:.2f}' for x in this)} | "
            f"{', '.join(f'{x:.2f}' for x in other)})")


def compare_collector(backend: str, other: Path, args, workdir: Path) -> None:
    url, dropme = collector_bench._prepare(backend, workdir)
    try:
        site = collector_bench._site(url)
        script = workdir / "collect.lua"
        script.write_text(collector_bench.LUA.replace("SITE", site))
        trees = {"this": ROOT, "other": other}
        ports = {name: collector_bench._free_port() for name in trees}
        servers = {name: _start(tree, ports[name], _env(tree, url, workdir)) for name, tree in trees.items()}
        rates: dict[str, list[float]] = {name: [] for name in trees}
        p99: dict[str, list[float]] = {name: [] for name in trees}
        try:
            for name in trees:
                collector_bench._wrk(ports[name], 2, script)  # warm up, not counted
            collector_bench._drain(url)
            for _ in range(args.rounds):
                for name in trees:
                    result = collector_bench._wrk(ports[name], args.seconds, script)
                    rates[name].append(result["rate"])
                    p99[name].append(result["p99_ms"])
                    collector_bench._drain(url)  # the backlog must not steal the next run's CPU
        finally:
            for proc in servers.values():
                collector_bench._stop(proc)
    finally:
        collector_bench._drop(dropme)
    print(f"[{backend}] collector, {args.rounds} x {args.seconds} s per tree, alternating")
    print(_line("POST /collect throughput", rates["this"], rates["other"], "req/s", True))
    print(_line("POST /collect p99 latency", p99["this"], p99["other"], "ms", False), flush=True)


def _latency(tree: Path, env: dict, first, last) -> dict[str, float]:
    code = ("import json, datetime as d; from report import report_latency; "
            f"print(json.dumps(report_latency(__import__('os').environ, d.date.fromisoformat('{first}'), "
            f"d.date.fromisoformat('{last}'))))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare_report(backend: str, other: Path, args, workdir: Path) -> None:
    url, drop = report_bench.fresh_database(backend, args, workdir)
    trees = {"this": ROOT, "other": other}
    envs = {name: _env(tree, url, workdir) for name, tree in trees.items()}
    tracker = [sys.executable, "-m", "tracker"]
    try:
        report_bench.run([*tracker, "db", "upgrade"], envs["this"])
        today = datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).date()
        yesterday = today - timedelta(days=1)
        last = yesterday - timedelta(days=1)  # the history ends where yesterday begins
        report_bench.run([*tracker, "demo", "--sessions", str(args.sessions), "--orders", str(args.orders),
                          "--days", str(args.days), "--seed", str(args.seed), "--until", last.isoformat()],
                         envs["this"])
        report_bench.settle(url)
        first = last - timedelta(days=args.days)
        build = ["reports", "build", "--site", "demo.example", "--from", first.isoformat(), "--to",
                 last.isoformat()]
        builds: dict[str, list[float]] = {name: [] for name in trees}
        latency: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        report_bench.run([*tracker, *build], envs["this"])  # the first build links every visit once
        for trial in range(args.trials):
            # Each trial swaps which tree goes first: what one tree's run leaves the database doing
            # (PostgreSQL's autovacuum after a rewrite of the rollups) weighs on both alike.
            order = list(trees.items()) if trial % 2 == 0 else list(trees.items())[::-1]
            for name, tree in order:
                started = time.perf_counter()
                subprocess.run([*tracker, *build], env=envs[name], cwd=tree, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                builds[name].append(time.perf_counter() - started)
            for name, tree in order:
                for label, seconds in _latency(tree, envs[name], first, last).items():
                    latency[name].setdefault(label, []).append(seconds * 1000)
        # The night after (bench/report.py's Morning): each tree's nightly build of yesterday, each
        # from the same morning.
        morning = report_bench.Morning(args, envs["this"], url, yesterday)
        nightly: dict[str, list[float]] = {name: [] for name in trees}
        for trial in range(args.trials):
            order = list(trees.items()) if trial % 2 == 0 else list(trees.items())[::-1]
            for name, tree in order:
                morning.reset()
                nightly[name].append(report_bench.nightly_seconds(envs[name], tree))
    finally:
        drop()
    print(f"[{backend}] report, demo of {args.sessions} sessions over {args.days} days, {args.trials} "
          "trials per tree, alternating")
    print(_line("tracker reports build (whole range)", builds["this"], builds["other"], "s", False))
    print(_line("nightly build of yesterday (in-process)", nightly["this"], nightly["other"], "s", False))
    for label in latency["this"]:
        print(_line(f"GET /api/reports/roi, {label} ranges", latency["this"][label], latency["other"][label],
                    "ms", False))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, required=True, help="the other checkout (a git worktree)")
    parser.add_argument("--what", default="collector,report")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--orders", type=int, default=None, help="default: 3%% of the sessions")
    parser.add_argument("--seed", type=int, default=7)
    report_bench.database_options(parser)
    args = parser.parse_args()
    args.orders = args.sessions * 3 // 100 if args.orders is None else args.orders
    other = args.other.resolve()
    for tree in (ROOT, other):
        report_bench.compiled(tree)
    head = subprocess.run(["git", "-C", str(other), "log", "-1", "--format=%h %s"], capture_output=True,
                          text=True).stdout.strip()
    print(f"this: {ROOT}; other: {other} ({head[:70]}); {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if "collector" in args.what:
                compare_collector(backend.strip(), other, args, Path(tmp))
            if "report" in args.what:
                compare_report(backend.strip(), other, args, Path(tmp))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
