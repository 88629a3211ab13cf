"""Collector throughput against a bare Flask endpoint, and `tracker serve`'s worker against stock
gunicorn gthread, on SQLite and PostgreSQL, plus a kill -9.

    .venv/bin/python bench/collector.py [--seconds 10] [--rounds 2] [--backends sqlite,postgresql]
                                        [--database-url URL]

Three servers run under the same gunicorn settings (`tracker.server.options`, 2 workers x 8
threads): the bare endpoint, the collector under `tracker serve`'s worker (gthread whose event
loop answers plain page views) and the same collector under stock `gthread`; they are loaded
alternately by wrk (16 connections, rotating visitors, user agents and campaigns). Prints
requests/s, their ratio, p99 latency, and page views acknowledged (2xx) versus stored. Needs
`wrk` and, for PostgreSQL, a server at TRACKER_BENCH_PG_URL (default: local, user postgres);
a throwaway database is created there and dropped afterwards. `--database-url` measures against a
database you migrated yourself instead (`tracker db upgrade`; a Citus coordinator's, say): it gets a
site of its own and keeps what the runs store. Figures only, no assertions.
"""

# ruff: noqa: E501  (the wrk Lua script carries real, long user-agent strings)
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRK = os.environ.get("WRK", "/usr/bin/wrk")
CONNECTIONS = 16
WORKERS = 2
THREADS = 8
PG_ADMIN = os.environ.get("TRACKER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _bare_app():
    """The baseline: parse the JSON body, answer 202. Nothing else."""
    from flask import Flask, Response, request

    app = Flask("bare")

    @app.post("/collect")
    def collect():
        json.loads(request.get_data())
        return Response(status=202)

    return app


if os.environ.get("TRACKER_BENCH_BARE"):
    bare_app = _bare_app()

LUA = r"""
local counter = 0
local agents = {
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
  "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 309.0.2.18.99",
  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
}
local landings = {
  "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign=black+friday",
  "https://shop.example/products/hoodie?utm_source=postscript&utm_medium=sms&utm_campaign=restock",
  "https://shop.example/collections/sale?utm_source=klaviyo&utm_medium=email&utm_campaign=weekly",
  "https://shop.example/?gclid=Cj0KCQiA",
  "https://shop.example/products/tee",
}
local referrers = {"", "https://www.google.com/", "https://l.instagram.com/", "", ""}
function setup(thread)
  thread:set("prefix", tostring(math.random(1, 1000000000)))
end
function init(args)
  math.randomseed(os.time() + tonumber(prefix))
end
request = function()
  counter = counter + 1
  local visitor = prefix .. "-" .. (counter % 4000)
  local url
  if counter % 5 == 0 then
    url = landings[(counter % #landings) + 1] .. "&n=" .. counter
  else
    url = "https://shop.example/products/item-" .. (counter % 97)
  end
  local body = '{"site":"SITE","url":"' .. url .. '","referrer":"' .. referrers[(counter % #referrers) + 1]
    .. '","visitor":"' .. visitor .. '","event":"pageview","title":"Item","width":390}'
  local headers = {}
  headers["Content-Type"] = "text/plain;charset=UTF-8"
  headers["User-Agent"] = agents[(counter % #agents) + 1] .. " r" .. (counter % 300)
  return wrk.format("POST", "/collect", headers, body)
end
done = function(summary, latency, requests)
  local failed = summary.errors.status
  io.write(string.format('RESULT {"requests": %d, "non2xx": %d, "socket_errors": %d, "seconds": %f, "p99_ms": %f}\n',
    summary.requests, failed, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.duration / 1e6, latency:percentile(99) / 1000))
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server on port {port} did not start")


def _start(app: str, port: int, env: dict, worker_class: str | None = None) -> subprocess.Popen:
    worker = f", worker_class={worker_class!r}" if worker_class else ""
    code = f"from tracker.server import run; run('127.0.0.1:{port}', {WORKERS}, {THREADS}, app={app!r}{worker})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        stdout=None if os.environ.get('BENCH_DEBUG') else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _wait_port(port)
    time.sleep(1.0)  # let every worker boot
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wrk(port: int, seconds: int, script: Path) -> dict:
    out = subprocess.run(
        [WRK, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/collect"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["ok"] = result["requests"] - result["non2xx"]
    result["rate"] = result["requests"] / result["seconds"]
    return result


def _workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def _count(url: str) -> int:
    from sqlalchemy import text

    from tracker.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.scalar(text("SELECT count(*) FROM pageviews"))
    engine.dispose()
    return int(count)


def _drain(url: str) -> tuple[int, int, float]:
    """Sessionise what the run left in `hits`; returns (waiting, sessionised here, seconds)."""
    from sqlalchemy import text

    from tracker.collect.writer import drain
    from tracker.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        waiting = int(conn.scalar(text("SELECT count(*) FROM hits")))
    started = time.perf_counter()
    done = drain(engine)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return waiting, done, elapsed


def _prepare(backend: str, workdir: Path) -> tuple[str, str | None]:
    """A migrated database with one site; returns (url, PostgreSQL database to drop)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tracker.migrate import upgrade

    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(url)
        return url, None
    name = f"tracker_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url, name


def _drop(name: str | None) -> None:
    if name is None:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _site(url: str) -> str:
    from sqlalchemy.orm import Session

    from tracker.db import make_engine
    from tracker.sites import create_site

    engine = make_engine(url)
    with Session(engine) as session:
        site = create_site(session, f"shop-{uuid.uuid4().hex[:8]}.example")
        session.commit()
        public_id = site.public_id
    engine.dispose()
    return public_id


def bench(backend: str, seconds: int, rounds: int, database_url: str | None = None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    url, dropme = (database_url, None) if database_url else _prepare(backend, workdir)
    try:
        site = _site(url)
        script = workdir / "collect.lua"
        script.write_text(LUA.replace("SITE", site))
        env = dict(
            os.environ,
            TRACKER_DATABASE_URL=url,
            TRACKER_SECRET_KEY="bench-secret-key-0123456789",
            TRACKER_INSTANCE_PATH=str(workdir / "instance"),
            TRACKER_NIGHTLY="0",  # no nightly build competing with the load
            PYTHONPATH=str(ROOT / "bench") + os.pathsep + str(ROOT),
        )
        bare_port, collector_port, threaded_port = _free_port(), _free_port(), _free_port()
        bare = _start("collector:bare_app", bare_port, dict(env, TRACKER_BENCH_BARE="1"))
        collector = _start("tracker.wsgi:app", collector_port, env)
        # The same app under gunicorn's stock threaded worker: what the event loop must beat.
        threaded = _start("tracker.wsgi:app", threaded_port, env, worker_class="gthread")
        bare_runs, collector_runs, threaded_runs = [], [], []
        try:
            for port in (collector_port, threaded_port):
                _wrk(port, 2, script)  # warm caches and connections, not counted
            _drain(url)
            warm_stored = _count(url)
            drains = []
            for _ in range(rounds):
                bare_runs.append(_wrk(bare_port, seconds, script))
                collector_runs.append(_wrk(collector_port, seconds, script))
                # Sessionise the backlog before the next run, so it does not steal its CPU.
                drains.append(_drain(url))
                threaded_runs.append(_wrk(threaded_port, seconds, script))
                drains.append(_drain(url))
            stored = _count(url) - warm_stored
            acknowledged = sum(run["ok"] for run in collector_runs + threaded_runs)

            # kill -9 a worker mid-load: every acknowledged page view must still be stored
            before = _count(url)
            killer = subprocess.Popen(
                [sys.executable, "-c", f"import time; time.sleep({seconds / 2})"],
            )
            wrk = subprocess.Popen(
                [WRK, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script),
                 f"http://127.0.0.1:{collector_port}/collect"],
                stdout=subprocess.PIPE,
                text=True,
            )
            killer.wait()
            victims = _workers(collector.pid)
            if victims:
                os.kill(victims[0], signal.SIGKILL)
            out, _ = wrk.communicate()
            line = next(row for row in out.splitlines() if row.startswith("RESULT "))
            kill_run = json.loads(line[len("RESULT "):])
            kill_ack = kill_run["requests"] - kill_run["non2xx"]
            _drain(url)  # the killed worker's waiting hits are sessionised by whoever claims them
            kill_stored = _count(url) - before
        finally:
            _stop(bare)
            _stop(collector)
            _stop(threaded)
    finally:
        _drop(dropme)
    bare_rate = sum(r["rate"] for r in bare_runs) / len(bare_runs)
    collector_rate = sum(r["rate"] for r in collector_runs) / len(collector_runs)
    threaded_rate = sum(r["rate"] for r in threaded_runs) / len(threaded_runs)
    return {
        "backend": backend,
        "bare_rps": bare_rate,
        "collector_rps": collector_rate,
        "ratio": collector_rate / bare_rate,
        "threaded_rps": threaded_rate,
        "threaded_p99_ms": max(r["p99_ms"] for r in threaded_runs),
        "loop_gain": collector_rate / threaded_rate,
        "bare_p99_ms": max(r["p99_ms"] for r in bare_runs),
        "collector_p99_ms": max(r["p99_ms"] for r in collector_runs),
        "acknowledged": acknowledged,
        "stored": stored,
        "non2xx": sum(r["non2xx"] for r in collector_runs + threaded_runs),
        "kill_acknowledged": kill_ack,
        "kill_stored": kill_stored,
        "kill_socket_errors": kill_run["socket_errors"],
        "killed_worker": bool(victims),
        "waiting": sum(d[0] for d in drains),
        "drain_seconds": sum(d[2] for d in drains),
        "run_seconds": sum(r["seconds"] for r in collector_runs + threaded_runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--database-url", help="a migrated database to measure against (one backend, named as you like)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    print(f"gunicorn: {WORKERS} workers x {THREADS} threads (tracker serve's worker: gthread whose event "
          f"loop answers plain page views; the bare app runs as plain gthread under it); wrk: {CONNECTIONS} connections, "
          f"{args.rounds} x {args.seconds}s per app, alternating; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}")
    backends = ["database-url"] if args.database_url else args.backends.split(",")
    for backend in backends:
        before = os.getloadavg()[0]
        r = bench(backend.strip(), args.seconds, args.rounds, args.database_url)
        print(
            f"\n[{r['backend']}]  (load average {before:.2f} before, {os.getloadavg()[0]:.2f} after)\n"
            f"  bare endpoint   {r['bare_rps']:8.0f} req/s   p99 {r['bare_p99_ms']:6.1f} ms\n"
            f"  collector       {r['collector_rps']:8.0f} req/s   p99 {r['collector_p99_ms']:6.1f} ms"
            "   (tracker serve's worker)\n"
            f"  ratio           {r['ratio']:8.2f}   (collector / bare endpoint)\n"
            f"  stock gthread   {r['threaded_rps']:8.0f} req/s   p99 {r['threaded_p99_ms']:6.1f} ms"
            "   (the same app, gunicorn's threaded worker)\n"
            f"  event loop gain {r['loop_gain']:8.2f}   (tracker serve's worker / stock gthread)\n"
            f"  sessionising    {r['waiting']} page views waited in hits after the runs; drained in "
            f"{r['drain_seconds']:.1f} s; acknowledged and sessionised end to end "
            f"{r['acknowledged'] / (r['run_seconds'] + r['drain_seconds']):.0f} page views/s\n"
            f"  page views      acknowledged {r['acknowledged']}  stored {r['stored']}  "
            f"lost {max(0, r['acknowledged'] - r['stored'])}  (non-2xx {r['non2xx']})\n"
            f"  kill -9 worker  {'yes' if r['killed_worker'] else 'NO WORKER FOUND'}: acknowledged "
            f"{r['kill_acknowledged']}  stored {r['kill_stored']}  "
            f"lost {max(0, r['kill_acknowledged'] - r['kill_stored'])}  "
            f"(in-flight requests cut: {r['kill_socket_errors']})",
            flush=True,
        )


if __name__ == "__main__":
    main()
