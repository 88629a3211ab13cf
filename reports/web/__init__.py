"""The pages people open: login, Mission Control, the ROI report, claims, cohorts, SMS links, costs."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask

# Templates and static files live in reports/templates and reports/static.
bp = Blueprint(
    "pages",
    "reports",
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)
SESSION_LIFETIME = timedelta(days=14)


def init_app(app: Flask) -> None:
    from reports.web import (  # noqa: F401  (each module adds its routes to the blueprint)
        claims_pages,
        cohorts_pages,
        costs_pages,
        format,
        links,
        login,
        mission,
        roi_pages,
        security,
    )

    app.session_interface = security.SessionInterface()
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    format.init_app(app)
    app.after_request(security.add_security_headers)
    app.register_blueprint(bp)
