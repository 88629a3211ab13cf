"""Kill test for the order webhooks: SIGKILL workers while stores deliver, then count every order.

Runs the app under gunicorn, posts signed Shopify deliveries from a few threads with the
stores' behaviour (a delivery is retried under the same webhook id until it gets a 2xx), kills
worker processes with SIGKILL meanwhile, and checks that every acknowledged order is present
exactly once. Each order is delivered twice (orders/create and orders/paid, distinct webhook
ids), as Shopify does.

    .venv/bin/python bench/webhooks_kill.py                       # SQLite file in a temp dir
    .venv/bin/python bench/webhooks_kill.py --database-url postgresql+psycopg://postgres@127.0.0.1/killtest
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select

ROOT = Path(__file__).resolve().parent.parent
SECRET = "kill-test-shopify-secret"
# A store gives up on a delivery after this many attempts (Shopify: 8 over 4 hours; compressed here).
MAX_ATTEMPTS = 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="defaults to a fresh SQLite file")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=1.0, help="seconds between SIGKILLs")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="webhooks-kill-"))
    url = args.database_url or f"sqlite:///{workdir / 'tracker.db'}"
    env = {
        **os.environ,
        "TRACKER_DATABASE_URL": url,
        "TRACKER_SECRET_KEY": "kill-test-secret-key-0123456789",
        "TRACKER_INSTANCE_PATH": str(workdir / "instance"),
    }
    tracker = [sys.executable, "-m", "tracker"]
    if url.startswith("postgresql"):
        _recreate_postgres(url)
    subprocess.run([*tracker, "db", "upgrade"], env=env, check=True, capture_output=True)
    added = subprocess.run(
        [*tracker, "sites", "add", f"kill-{uuid.uuid4().hex[:6]}.example"],
        env=env, check=True, capture_output=True, text=True,
    )
    site = added.stdout.strip().splitlines()[-1]
    subprocess.run(
        [*tracker, "sites", "secret", site, "shopify", SECRET], env=env, check=True, capture_output=True
    )

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "1", "tracker.wsgi:app"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base)
        figures = _run(base, site, server.pid, args)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()

    unprocessed_before = _count_unprocessed(url)
    replay = subprocess.run([*tracker, "webhooks", "replay"], env=env, capture_output=True, text=True)
    figures.update(_verify(url, figures.pop("acknowledged")))
    figures["deliveries left unprocessed by a kill (before replay)"] = unprocessed_before
    figures["replay"] = (replay.stdout.strip().splitlines() or [replay.stderr.strip()])[-1]
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"webhooks kill test on {backend}, {args.workers} gunicorn workers, {args.threads} sender threads")
    print("(machine shared with other work: timings are indicative only)")
    for name, value in figures.items():
        print(f"  {name}: {value}")
    return 0 if figures["acknowledged orders missing"] == 0 and figures["orders stored twice"] == 0 else 1


def _run(base: str, site: str, master: int, args) -> dict:
    jobs = []
    for n in range(args.orders):
        order_id = 2**60 + n  # Shopify ids exceed 2^53
        for topic in ("orders/create", "orders/paid"):
            jobs.append((order_id, topic, str(uuid.uuid4())))
    random.shuffle(jobs)
    lock = threading.Lock()
    acknowledged: set[int] = set()
    stats = {"requests": 0, "retries": 0, "connection errors": 0, "5xx": 0, "given up": 0}
    done = threading.Event()

    def killer():
        kills = 0
        while not done.wait(args.kill_every):
            workers = _children(master)
            if workers:
                try:
                    os.kill(random.choice(workers), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
        stats["workers killed"] = kills

    def sender(my_jobs):
        http = requests.Session()
        for order_id, topic, webhook_id in my_jobs:
            body = _order_body(order_id)
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Webhook-Id": webhook_id,
                "X-Shopify-Hmac-Sha256": base64.b64encode(
                    hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
                ).decode(),
            }
            for attempt in range(MAX_ATTEMPTS):
                with lock:
                    stats["requests"] += 1
                    stats["retries"] += attempt > 0
                try:
                    response = http.post(
                        f"{base}/webhooks/shopify/{site}", data=body, headers=headers, timeout=10
                    )
                except requests.RequestException:
                    with lock:
                        stats["connection errors"] += 1
                    http = requests.Session()
                    time.sleep(0.05 * min(attempt + 1, 10))
                    continue
                if response.status_code == 200:
                    with lock:
                        acknowledged.add(order_id)
                    break
                if response.status_code >= 500:
                    with lock:
                        stats["5xx"] += 1
                    time.sleep(0.05 * min(attempt + 1, 10))
                    continue
                raise SystemExit(f"unexpected {response.status_code}: {response.text}")
            else:
                with lock:
                    stats["given up"] += 1

    started = time.monotonic()
    kill_thread = threading.Thread(target=killer)
    kill_thread.start()
    threads = [threading.Thread(target=sender, args=(jobs[i :: args.threads],)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    kill_thread.join()
    elapsed = time.monotonic() - started
    return {
        "orders": args.orders,
        "deliveries": len(jobs),
        **stats,
        "seconds": round(elapsed, 1),
        "deliveries per second": round(len(jobs) / elapsed, 1),
        "acknowledged": acknowledged,
    }


def _order_body(order_id: int) -> bytes:
    order = {
        "id": order_id,
        "created_at": "2026-10-05T11:20:00-04:00",
        "updated_at": "2026-10-05T11:20:00-04:00",
        "currency": "USD",
        "financial_status": "paid",
        "total_price": "19.99",
        "total_price_set": {"shop_money": {"amount": "19.99", "currency_code": "USD"}},
        "test": False,
        "email": f"buyer{order_id % 1000}@example.com",
        "landing_site": "/?utm_source=attentive&utm_medium=sms",
        "note_attributes": [{"name": "_tracker_vid", "value": f"v{order_id % 500}"}],
    }
    return json.dumps(order, separators=(",", ":")).replace("/", "\\/").encode()


def _verify(url: str, acknowledged: set[int]) -> dict:
    from tracker.db import make_engine
    from tracker.models import Order, WebhookDelivery

    engine = make_engine(url)
    with engine.connect() as conn:
        counts = dict(conn.execute(select(Order.external_id, func.count()).group_by(Order.external_id)).all())
        statuses = dict(
            conn.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all()
        )
        total = conn.scalar(select(func.sum(Order.total_minor)))
    engine.dispose()
    return {
        "acknowledged orders": len(acknowledged),
        "acknowledged orders missing": sum(1 for o in acknowledged if counts.get(str(o), 0) == 0),
        "orders stored twice": sum(1 for c in counts.values() if c > 1),
        "orders stored": len(counts),
        "revenue (minor units)": total,
        "deliveries by status (after replay)": statuses,
    }


def _count_unprocessed(url: str) -> int:
    from tracker.models import WebhookDelivery

    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(
            select(func.count()).where(WebhookDelivery.status.in_(("received", "failed")))
        )
    engine.dispose()
    return n


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(base: str) -> None:
    for _ in range(200):
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


def _recreate_postgres(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
