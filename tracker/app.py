"""The application factory: configuration, database, and each subsystem's blueprints."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from reports import api as report_api
from reports import web as report_pages
from tracker import db, health
from tracker.collect import snippet
from tracker.collect import views as collector
from tracker.config import Config
from tracker.webhooks import views as webhooks

# Largest request body any endpoint accepts; endpoints enforce tighter limits of their own.
MAX_BODY_BYTES = 2 * 1024 * 1024
# Paths answered with JSON errors rather than HTML pages.
JSON_PREFIXES = ("/api/", "/collect", "/webhooks/", "/healthz")


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
    health.init_app(app)
    snippet.init_app(app)
    collector.init_app(app)
    webhooks.init_app(app)
    report_api.init_app(app)
    report_pages.init_app(app)
    app.register_error_handler(HTTPException, _http_error)
    return app


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
