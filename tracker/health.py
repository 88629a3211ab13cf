"""GET /healthz: 200 when the database answers, 503 when it does not, always within the health limit.

One probe at a time runs on its own thread and the request waits for its answer at most the
health limit (TRACKER_DB_WAIT_HEALTH): a connection attempt alone may take longer (libpq waits at
least 2 s), and a load balancer checking every second never piles up threads on a database that
hangs. The probe reads a table (a locked SQLite file, or a database without the tracker's tables,
does not answer).
"""

from __future__ import annotations

import threading

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from tracker.db import get_engine
from tracker.waits import within

bp = Blueprint("health", __name__)


class _Answer:
    __slots__ = ("ready", "ok")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.ok = False


class Probe:
    def __init__(self, engine: Engine, limit: float):
        self.engine = engine
        self.limit = limit
        self._lock = threading.Lock()
        self._current: _Answer | None = None

    def answers(self) -> bool:
        """Whether the database answered a read within the limit (joining a probe under way)."""
        with self._lock:
            answer = self._current
            if answer is None or answer.ready.is_set():
                answer = self._current = _Answer()
                probe = threading.Thread(target=self._probe, args=(answer,), daemon=True)
                probe.start()
        return answer.ready.wait(self.limit) and answer.ok

    def _probe(self, answer: _Answer) -> None:
        try:
            with within(self.limit), self.engine.connect() as conn:
                conn.execute(text("SELECT 1 FROM sites LIMIT 1")).all()
            answer.ok = True
        except SQLAlchemyError:
            answer.ok = False
        finally:
            answer.ready.set()


@bp.get("/healthz")
def healthz():
    if not current_app.extensions["tracker.health"].answers():
        return jsonify(status="unavailable", error="The database does not answer."), 503
    return jsonify(status="ok")


def init_app(app: Flask) -> None:
    app.extensions["tracker.health"] = Probe(get_engine(app), app.config["TRACKER"].waits.health)
    app.register_blueprint(bp)
