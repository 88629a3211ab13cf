"""The JSON API: `GET /api/reports/roi`, `/claims`, `/cohorts` and `POST /api/costs`."""

from __future__ import annotations

import json
from decimal import Decimal

from flask import Blueprint, Flask, jsonify, request

from reports.auth import api_auth_required
from reports.claims import claims_report
from reports.cohorts import cohorts_report, default_range, parse_horizons
from reports.costs import CostError, parse_cost_rows, save_costs
from reports.roi import ReportQueryError, parse_report_query, report_site, roi_report
from tracker.auth import AUTH_REQUIRED, bearer_token
from tracker.days import site_today
from tracker.db import begin_write, get_session
from tracker.sites import SiteError, require_site

MAX_COST_ROWS = 10_000

bp = Blueprint("reports_api", __name__)


def _error(message: str, status: int = 400, **extra):
    response = jsonify(error=message, **extra)
    response.status_code = status
    return response


@bp.get("/api/reports/roi")
@api_auth_required
def roi():
    return _report(roi_report)


@bp.get("/api/reports/claims")
@api_auth_required
def claims():
    """What the SMS and email platforms claim against the store's own figures (reports.claims)."""
    return _report(claims_report)


@bp.get("/api/reports/cohorts")
@api_auth_required
def cohorts():
    """First-sale cohorts: what customers brought by each touch are worth later (reports.cohorts)."""
    def build(session, query):
        return cohorts_report(session, query, parse_horizons(request.args.get("horizons")))

    return _report(build, default_range)


def _report(build, defaults=None):
    """A report for the query string's site, range, model and lookback, as JSON nobody caches.

    `defaults(args, today)` fills in a report's own default range (the site's today)."""
    session = get_session()
    try:
        args = request.args
        if defaults is not None:
            args = defaults(args, site_today(report_site(session, args)))
        query = parse_report_query(session, args)
        answer = build(session, query)
    except ReportQueryError as exc:
        return _error(str(exc))
    response = jsonify(answer)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/api/costs")
def costs():
    """Spend rows for automation: {"site", "rows": [{"date", "source", "medium", "campaign", "cost"}]}."""
    if bearer_token() is None:
        return _error(AUTH_REQUIRED, 401)
    body = _json_body()
    if isinstance(body, list):
        body = {"rows": body}
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        return _error('Send a JSON object {"site": "<site id>", "rows": [{"date", "source", "medium", '
                      '"campaign", "cost"}, ...]}.')
    if len(body["rows"]) > MAX_COST_ROWS:
        return _error(f"At most {MAX_COST_ROWS} rows per request; split the upload.", 413)
    session = get_session()
    try:
        site = require_site(session, str(body.get("site") or request.args.get("site") or ""))
    except SiteError as exc:
        return _error(str(exc))
    try:
        rows = parse_cost_rows(body["rows"], site.currency, first_line=0)
    except CostError as exc:
        return _error(str(exc), errors=exc.errors)
    site_id = site.id
    session.rollback()  # start the write transaction afresh (BEGIN IMMEDIATE on SQLite)
    begin_write(session)
    saved = save_costs(session, site_id, rows)
    session.commit()
    return jsonify(saved=saved), 200


def _json_body():
    """The request's JSON, numbers with a fraction read as the exact decimals they spell (a cost
    of 12.3 is 12.30, never the float nearest to it); None when it is not JSON."""
    if not request.is_json:
        return None
    try:
        return json.loads(request.get_data(), parse_float=Decimal)
    except ValueError:  # malformed JSON or text that is not UTF-8
        return None


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
