"""The claims page: what each SMS platform claims beside what the store's orders say."""

from __future__ import annotations

from flask import Response, render_template

from reports.auth import login_required
from reports.claims import claims_report
from reports.csvsafe import write_rows
from reports.roi import parse_report_query
from reports.web import bp
from reports.web.context import PRESETS, choose_site, preset_for
from reports.web.roi_pages import MODEL_LABELS, csv_response, report_args
from tracker.days import site_today
from tracker.db import get_session

COLUMNS = ("platform", "campaign", "claimed_revenue", "claimed_orders", "tracked_revenue", "tracked_orders",
           "over_claim", "clicks", "landed_sessions", "landed_share")


def _load():
    db = get_session()
    choice = choose_site(db)
    if choice.site is None:
        return choice, None, None
    query = parse_report_query(db, report_args(choice.site))
    return choice, query, claims_report(db, query)


@bp.get("/reports/claims")
@login_required
def claims():
    choice, query, report = _load()
    site_ref = choice.site.public_id if choice.site else None
    preset = preset_for(query.date_from, query.date_to, site_today(choice.site)) if query else "custom"
    return render_template("claims.html", choice=choice, site_ref=site_ref, query=query, report=report,
                           presets=PRESETS, preset=preset, models=MODEL_LABELS)


@bp.get("/reports/claims.csv")
@login_required
def claims_csv():
    choice, query, report = _load()
    if report is None:
        return Response("There is no site yet.\n", status=404, mimetype="text/plain")
    body = [[row[c] if row[c] is not None else "" for c in COLUMNS] for row in report["rows"]]
    body.append(["(all)", "", report["totals"]["claimed_revenue"], "", report["totals"]["net_revenue"], "",
                 report["totals"]["claimed_share_of_net"] or "", "", "", ""])
    name = f"claims-{choice.site.domain}-{query.date_from}-{query.date_to}-{query.model}.csv"
    return csv_response(write_rows(COLUMNS, body), name)
