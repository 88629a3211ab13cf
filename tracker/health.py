"""GET /healthz: 200 when the database answers, 503 when it does not, at once.

A request never waits on the database itself: a probe thread per process reads a table every
INTERVAL seconds while health checks keep coming (it stops after IDLE seconds without one), and
`/healthz` answers from its latest result: healthy when a read succeeded within the health limit
(TRACKER_DB_WAIT_HEALTH) plus one interval. So a load balancer's check gets its 503 within that
limit of the database hanging, and without waiting for a server thread: the collector's event
loop answers it (tracker.collect.eventloop), as Flask does here. Only the very first check of a
process waits, at most the limit, for the first read. A locked SQLite file, or a database without
the tracker's tables, does not answer.
"""

from __future__ import annotations

import json
import threading
import time

from flask import Blueprint, Flask, Response, current_app
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from tracker.db import MEMORY_URLS, get_engine, make_engine
from tracker.waits import within

bp = Blueprint("health", __name__)

# Seconds between two reads while checks keep coming, and without a check after which reads stop.
INTERVAL = 0.5
IDLE = 30.0
OK_BODY = json.dumps({"status": "ok"})
UNAVAILABLE_BODY = json.dumps({"status": "unavailable", "error": "The database does not answer."})


class Probe:
    def __init__(self, engine: Engine, limit: float):
        self.engine = engine
        self.limit = limit
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._first = threading.Event()
        self._last_ok: float | None = None  # monotonic time of the last successful read
        self._wanted_until = 0.0

    def state(self) -> bool | None:
        """Whether the database answers, from the latest reads; None before the first read ends."""
        self._keep_reading()
        if not self._first.is_set():
            return None
        last = self._last_ok
        return last is not None and time.monotonic() - last <= self.limit + INTERVAL

    def answers(self) -> bool:
        """`state()`, waiting at most the limit for the first read."""
        self._keep_reading()
        self._first.wait(self.limit)
        return bool(self.state())

    def _keep_reading(self) -> None:
        self._wanted_until = time.monotonic() + IDLE
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._first.clear()  # what the reads said before they stopped is old news
                self._last_ok = None
                self._thread = threading.Thread(target=self._read, name="tracker-health", daemon=True)
                self._thread.start()

    def _read(self) -> None:
        while time.monotonic() < self._wanted_until:
            try:
                with within(self.limit), self.engine.connect() as conn:
                    conn.execute(text("SELECT 1 FROM sites LIMIT 1")).all()
                self._last_ok = time.monotonic()
            except SQLAlchemyError:
                pass
            self._first.set()
            time.sleep(INTERVAL)


def answer(healthy: bool) -> tuple[int, str]:
    """The status and JSON body of a health check (Flask's and the event loop's alike)."""
    return (200, OK_BODY) if healthy else (503, UNAVAILABLE_BODY)


@bp.get("/healthz")
def healthz():
    status, body = answer(current_app.extensions["tracker.health"].answers())
    return Response(body + "\n", status=status, mimetype="application/json")


def init_app(app: Flask) -> None:
    config = app.config["TRACKER"]
    # Its own connection for each read (no pool): nothing is left open when the reads stop, and
    # the app's pool is never short of a connection because of them.
    engine = get_engine(app) if config.database_url in MEMORY_URLS else make_engine(
        config.database_url, config.waits, poolclass=NullPool)
    app.extensions["tracker.health"] = Probe(engine, config.waits.health)
    app.register_blueprint(bp)
