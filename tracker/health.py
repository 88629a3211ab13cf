"""GET /healthz: 200 when the database answers, 503 when it does not."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tracker.db import get_engine

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="unavailable", error="The database does not answer."), 503
    return jsonify(status="ok")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
