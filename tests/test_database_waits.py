"""When the database hangs, every endpoint answers in time, nothing acknowledged is lost, and the
server serves normally once the database answers again (CONTRACT: "Waiting for the database").

PostgreSQL is reached through a TCP proxy started by the test which, when told to hang, keeps
accepting connections and reading nothing (what a network partition, a full disk or a stuck lock
looks like from the app). On SQLite another process holds the database file locked.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.pages.conftest import EMAIL, PASSWORD, csrf_from
from tests.webhooks.conftest import SHOPIFY_SECRET, shopify_headers, shopify_order
from tracker.credentials import hash_password, hash_token, new_token
from tracker.models import ApiToken, Order, Pageview, Role, User, WaitingHit, WebhookDelivery
from tracker.sites import add_secret

# What CONTRACT.md promises while the database hangs, in seconds (with the defaults).
PROMISED = {"webhook": 4.0, "health": 2.0, "pageview": 5.0, "report json": 15.0, "report page": 15.0}
BROWSER = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
# The hang lasts longer than every limit.
HANG_SECONDS = 18.0


class Proxy:
    """A TCP proxy to `upstream` that forwards, or hangs: accepts and reads nothing, forwards
    nothing, until it forwards again (then what was sent meanwhile goes through, as after a
    partition heals)."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def hang(self) -> None:
        self.forwarding.clear()

    def forward(self) -> None:
        self.forwarding.set()

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        self.forwarding.wait()
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self.sockets += [client, server]
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                self.forwarding.wait()
                data = source.recv(65536)
                if not data:
                    break
                self.forwarding.wait()
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server:
    """`tracker serve` (one worker, eight threads) in a child process."""

    def __init__(self, env: dict[str, str]):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        root = Path(__file__).resolve().parent.parent
        code = f"from tracker.server import run; run('127.0.0.1:{self.port}', 1, 8)"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], env=dict(os.environ, **env, PYTHONPATH=str(root)), cwd=root,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    errors = self.proc.communicate()[1].decode()
                    raise AssertionError(f"the server did not start:\n{errors}") from None
                time.sleep(0.05)

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             timeout: float = 60) -> tuple[int, float, bytes, dict]:
        """(status, seconds, body, headers) of one request on a new connection."""
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, time.monotonic() - started, data, dict(response.getheaders())
        finally:
            conn.close()

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with self.proc.stderr:
            return self.proc.stderr.read().decode()


class Shop:
    """What the store, the browser and the marketer send, and what each was told."""

    def __init__(self, server: Server, site, token: str, cookie: str):
        self.server = server
        self.site = site
        self.token = token
        self.cookie = cookie
        self.acknowledged_pages: list[str] = []
        self.webhook_ids: list[str] = []
        self.order_ids: set[int] = set()

    def pageview(self) -> tuple[int, float]:
        url = f"https://{self.site.domain}/p/{uuid.uuid4().hex}?utm_source=attentive&utm_medium=sms"
        body = json.dumps({"site": self.site.public_id, "visitor": f"v_{uuid.uuid4().hex[:16]}", "url": url,
                           "event": "pageview"})
        status, seconds, _, _ = self.server.call("POST", "/collect", body.encode(),
                                                 {"Content-Type": "text/plain", "User-Agent": BROWSER})
        if status == 202:
            self.acknowledged_pages.append(url)
        return status, seconds

    def webhook(self, webhook_id: str | None = None) -> tuple[int, float]:
        """An orders/create delivery; with `webhook_id`, the store's retry of that delivery."""
        if webhook_id is None:
            webhook_id = str(uuid.uuid4())
            self.webhook_ids.append(webhook_id)
        order_id = 10**15 + self.webhook_ids.index(webhook_id)
        self.order_ids.add(order_id)
        body = json.dumps(shopify_order(id=order_id, name=f"#{order_id}")).encode()
        status, seconds, _, _ = self.server.call(
            "POST", f"/webhooks/shopify/{self.site.public_id}", body,
            shopify_headers(body, "orders/create", webhook_id),
        )
        return status, seconds

    def health(self) -> tuple[int, float]:
        status, seconds, _, _ = self.server.call("GET", "/healthz")
        return status, seconds

    def report_json(self) -> tuple[int, float]:
        status, seconds, body, _ = self.server.call(
            "GET", f"/api/reports/roi?site={self.site.public_id}&preset=last_30_days",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert b"Traceback" not in body
        return status, seconds

    def report_page(self) -> tuple[int, float]:
        status, seconds, body, _ = self.server.call(
            "GET", f"/reports/roi?site={self.site.public_id}", headers={"Cookie": self.cookie})
        if status == 503:
            assert b"not answering" in body  # the page says why, in a sentence
        return status, seconds


def _log_in(server: Server) -> str:
    status, _, body, headers = server.call("GET", "/login")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    form = f"email={EMAIL}&password={PASSWORD.replace(' ', '+')}&csrf_token={csrf_from(body.decode())}"
    status, _, _, headers = server.call("POST", "/login", form.encode(), {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    assert status == 302, "the login failed"
    return headers["Set-Cookie"].split(";")[0]


@pytest.fixture
def shop_data(session, site):
    add_secret(session, site, "shopify", SHOPIFY_SECRET)
    token = new_token()
    session.add(ApiToken(name="hang", token_hash=hash_token(token), prefix=token[:8]))
    session.add(User(email=EMAIL, password_hash=hash_password(PASSWORD), role=Role.ADMIN))
    session.commit()
    return site, token


def _everything_once(shop: Shop, workers: int = 16) -> dict[str, list[tuple[int, float]]]:
    """Every endpoint at once, several page views and deliveries among them (a store's burst)."""
    calls = ([("pageview", shop.pageview)] * 4 + [("webhook", shop.webhook)] * 4
             + [("health", shop.health)] * 2 + [("report json", shop.report_json)]
             + [("report page", shop.report_page)])
    with ThreadPoolExecutor(workers) as pool:
        futures = [(name, pool.submit(call)) for name, call in calls]
        results: dict[str, list[tuple[int, float]]] = {}
        for name, future in futures:
            results.setdefault(name, []).append(future.result())
    return results


def _summary(results: dict[str, list[tuple[int, float]]]) -> str:
    return "; ".join(f"{name}: " + ", ".join(f"{status} in {seconds:.2f} s" for status, seconds in answers)
                     for name, answers in results.items())


def _hang_and_recover(shop: Shop, hang, recover, session, stopped=tuple(PROMISED)) -> None:
    """`stopped`: what needs the database that hangs (on SQLite, what writes)."""
    # Before: everything answers (and the pool holds connections that are about to hang).
    before = _everything_once(shop)
    assert all(status in (200, 202) for answers in before.values() for status, _ in answers), _summary(before)

    hang()
    started = time.monotonic()
    during = _everything_once(shop)
    print(f"\nduring the hang: {_summary(during)}")
    for name, answers in during.items():
        for status, seconds in answers:
            # The health check answers at once from the latest reads, which turn to 503 within its
            # limit of the hang's start (checked below); everything else waits its limit, then 503.
            expected = status in (200, 503) and status if name == "health" else \
                503 if name in stopped else status in (200, 202) and status
            assert status == expected, f"{name} answered {status} while the database hung"
            assert seconds <= PROMISED[name], f"{name} took {seconds:.2f} s (promised {PROMISED[name]} s)"
    if "health" in stopped:  # a load balancer sees the database gone within the promised time
        assert time.monotonic() - started > PROMISED["health"]
        assert shop.health()[0] == 503
    # A second wave while the first one's connections are still stuck: no thread is still held.
    again = _everything_once(shop)
    print(f"again during the hang: {_summary(again)}")
    for name, answers in again.items():
        for status, seconds in answers:
            expected = 503 if name in stopped else status in (200, 202) and status
            assert status == expected and seconds <= PROMISED[name], f"{name}: {status} in {seconds:.2f} s"
    time.sleep(max(0.0, HANG_SECONDS - (time.monotonic() - started)))
    recover()

    # After: serves normally without a restart, within seconds.
    deadline = time.monotonic() + 20
    while shop.health()[0] != 200:
        assert time.monotonic() < deadline, "the server did not recover"
        time.sleep(0.2)
    for webhook_id in list(shop.webhook_ids):  # the store retries what was not acknowledged
        status, _ = shop.webhook(webhook_id)
        assert status == 200
    after = _everything_once(shop)
    print(f"after: {_summary(after)}")
    assert all(status in (200, 202) for answers in after.values() for status, _ in answers), _summary(after)
    # Every worker thread is free again: as many slow-ish requests as threads, all answered.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: shop.report_json()[0], range(8)))
    assert statuses == [200] * 8

    # Nothing acknowledged is missing, nothing is stored twice.
    session.expire_all()
    # (a page view acknowledged under load may still wait in `hits` to be sessionised)
    stored = [*session.scalars(select(Pageview.url)), *session.scalars(select(WaitingHit.url))]
    assert len(shop.acknowledged_pages) >= 4 + 4
    assert sorted(url for url in stored if url in shop.acknowledged_pages) == sorted(shop.acknowledged_pages)
    orders = session.scalars(select(Order.external_id).where(Order.site_id == shop.site.id)).all()
    assert sorted(orders) == sorted(str(order_id) for order_id in shop.order_ids)
    deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert deliveries == len(shop.webhook_ids)
    session.rollback()


def test_postgresql_that_hangs(database_backend, database_url, config_env, shop_data, session, app):
    if database_backend != "postgresql":
        pytest.skip("the TCP proxy stands between the app and PostgreSQL; SQLite's case is the locked file")
    url = make_url(database_url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = Server({**config_env, "TRACKER_DATABASE_URL": proxied})
    try:
        site, token = shop_data
        shop = Shop(server, site, token, _log_in(server))
        _hang_and_recover(shop, proxy.hang, proxy.forward, session)
    finally:
        log = server.stop()
        proxy.close()
        print(log[-5000:])
    assert "Traceback" not in log


def test_sqlite_file_locked_by_another_process(database_backend, database_url, config_env, shop_data,
                                               session, app):
    if database_backend != "sqlite":
        pytest.skip("a SQLite database file is locked by another process")
    server = Server(config_env)
    path = make_url(database_url).database
    locker: list[subprocess.Popen] = []

    def lock():
        # The write lock, held: no other connection may write until it ends (in WAL mode they
        # may still read what was committed before).
        code = (
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({path!r}, isolation_level=None, timeout=30)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "db.execute('UPDATE sites SET domain = domain')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"locked\n"
        locker.append(proc)

    def unlock():
        proc = locker.pop()
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()

    try:
        site, token = shop_data
        shop = Shop(server, site, token, _log_in(server))
        _hang_and_recover(shop, lock, unlock, session, stopped=("webhook", "pageview"))
    finally:
        for proc in locker:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()
        log = server.stop()
        print(log[-5000:])
    assert "Traceback" not in log
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_statement_stuck_behind_a_lock_ends_at_the_deadline(database_url):
    """A stuck lock: another transaction holds the row; the waiting statement gives up in time
    and the engine serves the next caller normally."""
    from sqlalchemy import text

    from tracker.config import Waits
    from tracker.db import make_engine
    from tracker.waits import unanswered, within

    engine = make_engine(database_url, Waits())
    holder = make_engine(database_url, Waits())
    try:
        with holder.connect() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS wait_probe (id INTEGER PRIMARY KEY, n INTEGER)"))
            conn.execute(text("DELETE FROM wait_probe"))
            conn.execute(text("INSERT INTO wait_probe VALUES (1, 0)"))
            conn.commit()
        # Another thread holds the row (a deadline bounds what its own thread holds).
        locked, done = threading.Event(), threading.Event()

        def hold_the_row():
            with holder.connect() as lock:
                lock.execution_options(sqlite_immediate=True)  # SQLite: the write lock from the start
                lock.execute(text("UPDATE wait_probe SET n = n + 1 WHERE id = 1"))
                locked.set()
                done.wait(10)
                lock.rollback()

        holding = threading.Thread(target=hold_the_row)
        holding.start()
        assert locked.wait(10)
        started = time.monotonic()
        try:
            with pytest.raises(Exception) as caught, within(1.0), engine.begin() as conn:
                conn.execute(text("UPDATE wait_probe SET n = n + 10 WHERE id = 1"))
            waited = time.monotonic() - started
        finally:
            done.set()
            holding.join()
        assert unanswered(caught.value), caught.value
        assert 0.9 <= waited < 2.0
        with within(5.0), engine.begin() as conn:  # the pool hands out a working connection again
            conn.execute(text("UPDATE wait_probe SET n = n + 100 WHERE id = 1"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT n FROM wait_probe")).scalar() == 100
            conn.execute(text("DROP TABLE wait_probe"))
            conn.commit()
    finally:
        engine.dispose()
        holder.dispose()


@pytest.mark.parametrize("how", ["refused", "hangs"])
def test_the_build_retries_then_says_the_database_did_not_answer(how, database_backend, config_env, app,
                                                                  monkeypatch):
    from click.testing import CliRunner

    import reports.cli
    from tracker.cli import main

    if how == "hangs" and database_backend != "postgresql":
        pytest.skip("the hanging proxy stands in front of PostgreSQL")
    proxy = None
    if how == "refused":
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    else:
        proxy = Proxy(("127.0.0.1", 5432))
        proxy.hang()
        port = proxy.port
    monkeypatch.setattr(reports.cli, "BUILD_RETRY_PAUSE", 0.1)
    env = {**config_env, "TRACKER_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/test",
           "TRACKER_DB_CONNECT_TIMEOUT": "2"}
    started = time.monotonic()
    try:
        result = CliRunner(env=env).invoke(main, ["reports", "build"])
    finally:
        if proxy is not None:
            proxy.close()
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"The database (127.0.0.1:{port}/test) did not answer in 3 attempts" in result.output
    assert result.output.count("trying again") == 2
    assert "Traceback" not in result.output
    assert time.monotonic() - started < 3 * 2 + 5


def test_bad_wait_settings_are_refused_in_one_sentence():
    from tracker.config import Config
    from tracker.errors import ConfigError

    with pytest.raises(ConfigError, match="TRACKER_DB_WAIT_WEBHOOK must be a number of seconds"):
        Config.from_mapping({"TRACKER_SECRET_KEY": "x" * 32, "TRACKER_DB_WAIT_WEBHOOK": "soon"})
    config = Config.from_mapping({"TRACKER_SECRET_KEY": "x" * 32, "TRACKER_DB_WAIT_REPORT": "30"})
    assert config.waits.report == 30.0 and config.waits.webhook == 3.0
