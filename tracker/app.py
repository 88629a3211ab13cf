"""The application factory: configuration, database, and each subsystem's blueprints."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, current_app, jsonify, make_response, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from reports import api as report_api
from reports import web as report_pages
from tracker import access, db, health
from tracker.collect import snippet
from tracker.collect import views as collector
from tracker.config import Config, Waits
from tracker.errors import ReportQueryError
from tracker.waits import within
from tracker.webhooks import views as webhooks

# Largest request body any endpoint accepts; endpoints enforce tighter limits of their own.
MAX_BODY_BYTES = 2 * 1024 * 1024
# Paths answered with JSON errors rather than HTML pages.
JSON_PREFIXES = ("/api/", "/collect", "/webhooks/", "/healthz")
# What a browser or a client is told when the database did not answer in its caller's limit.
UNAVAILABLE = "The database is not answering right now; nothing was changed. Try again in a minute."
RETRY_AFTER = "30"

log = logging.getLogger(__name__)


def create_app(config: Config | Mapping[str, str] | None = None) -> Flask:
    """Build the app. `config` is a Config, a mapping of TRACKER_* strings, or None (environment)."""
    if not isinstance(config, Config):
        config = Config.from_mapping(config)
    app = Flask("tracker", instance_path=str(config.instance_path.resolve()))
    app.config.update(
        TRACKER=config,
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        TESTING=config.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if config.trusted_proxies:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=config.trusted_proxies, x_proto=config.trusted_proxies
        )

    db.init_app(app)
    access.init_app(app)
    health.init_app(app)
    snippet.init_app(app)
    collector.init_app(app)
    webhooks.init_app(app)
    report_api.init_app(app)
    report_pages.init_app(app)
    app.register_error_handler(HTTPException, _http_error)
    for error in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(error, _unavailable)
    app.register_error_handler(ReportQueryError, _bad_report)
    app.wsgi_app = RequestWaits(app.wsgi_app, config.waits)
    return app


class RequestWaits:
    """The outermost WSGI layer: each request's database work is bounded by its caller's limit
    (tracker.waits), so that it answers in time when the database hangs. New routes get the
    report limit."""

    def __init__(self, wsgi_app, waits: Waits):
        self.wsgi_app = wsgi_app
        self.waits = waits

    def limit(self, path: str) -> float:
        if path.startswith("/webhooks/"):
            return self.waits.webhook
        if path == "/healthz":
            return self.waits.health
        if path.startswith(("/collect", "/api/events")):
            return self.waits.collect
        return self.waits.report

    def __call__(self, environ, start_response):
        with within(self.limit(environ.get("PATH_INFO", ""))):
            return self.wsgi_app(environ, start_response)


def _unavailable(exc: Exception):
    """A database that did not answer (in time, or at all): 503, JSON or a page, never a 500."""
    log.warning("database unavailable for %s: %s", request.path, str(exc).splitlines()[0])
    response = _answer(503, "This page cannot be shown right now", UNAVAILABLE)
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def _bad_report(exc: ReportQueryError):
    """A report that cannot be answered as asked (wherever a report route finds out): 400."""
    return _answer(400, "This report cannot be shown", str(exc))


def _answer(status: int, title: str, message: str):
    if request.path.startswith(JSON_PREFIXES):
        response = jsonify(error=message)
    else:
        # The template alone: the pages' context (the logged-in user) may ask the database again.
        page = current_app.jinja_env.get_template("message.html").render(title=title, message=message)
        response = make_response(page)
    response.status_code = status
    return response


def _http_error(exc: HTTPException):
    """JSON errors for machine endpoints; the default HTML page elsewhere."""
    if request.path.startswith(JSON_PREFIXES):
        message = exc.description or exc.name
        if exc.code == 413:
            message = "The request body is too large."
        response = jsonify(error=message)
        response.status_code = exc.code or 500
        return response
    return exc
