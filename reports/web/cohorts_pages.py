"""The cohorts page and CSV: what the customers each touch brought are worth after their first sale."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from flask import Response, render_template, request, url_for

from reports.auth import login_required
from reports.charts import step_chart
from reports.cohorts import cohorts_report, default_range, parse_horizons
from reports.csvsafe import write_rows
from reports.roi import parse_report_query
from reports.web import bp
from reports.web.context import PRESETS, choose_site, preset_for
from reports.web.format import money
from reports.web.roi_pages import GROUPINGS, MODEL_LABELS, csv_response, report_args
from reports.web.roi_view import LABELS
from tracker.days import site_today
from tracker.db import get_session
from tracker.errors import ReportQueryError


def _load():
    """(choice, query, horizons, report); raises ReportQueryError."""
    db = get_session()
    choice = choose_site(db)
    if choice.site is None:
        raise ReportQueryError("No site yet: create one with `tracker sites add DOMAIN`, "
                               "then paste its snippet.")
    query = parse_report_query(db, default_range(report_args(choice.site), site_today(choice.site)))
    horizons = parse_horizons(request.args.get("horizons"))
    return choice, query, horizons, cohorts_report(db, query, horizons)


def _params(report: dict) -> dict[str, str]:
    return {"site": report["site"], "from": report["from"], "to": report["to"], "model": report["model"],
            "lookback": str(report["lookback"]), "by": ",".join(report["by"]),
            "horizons": ",".join(str(h) for h in report["horizons"])}


def _chart(figures: dict, horizons: list[int], currency: str, dims: tuple[str, ...] = ()):
    """A row's value per customer after its first order and each horizon, as a small bar chart."""
    title = " › ".join(figures[d] for d in dims) if dims else "All new customers"

    def amount(value):
        return None if value is None else Decimal(value)

    points = [("1st", amount(figures["first_order_value"]))]
    points += [(f"{h}d", amount(figures["revenue_per_customer"][str(h)])) for h in horizons]
    return step_chart(points, title=f"{title}, per customer", money=lambda v: money(v, currency))


@bp.get("/reports/cohorts")
@login_required
def cohorts():
    try:
        choice, query, horizons, report = _load()
    except ReportQueryError as exc:
        db = get_session()
        choice = choose_site(db)
        return render_template(
            "cohorts.html", error=str(exc), choice=choice,
            site_ref=choice.site.public_id if choice.site else None, query=None, report=None,
            presets=PRESETS, preset="custom", models=MODEL_LABELS, groupings=GROUPINGS,
            horizons=request.args.get("horizons", ""),
        ), 400
    params = _params(report)
    return render_template(
        "cohorts.html", error=None, choice=choice, site_ref=choice.site.public_id, query=query,
        report=report, labels=LABELS, presets=PRESETS, models=MODEL_LABELS, groupings=GROUPINGS,
        preset=preset_for(query.date_from, query.date_to, site_today(choice.site)),
        horizons=",".join(str(h) for h in horizons), chart=_chart,
        csv_url=url_for("pages.cohorts_csv") + "?" + urlencode(params),
        roi_url=url_for("pages.roi") + "?" + urlencode({k: v for k, v in params.items() if k != "horizons"}),
    )


@bp.get("/reports/cohorts.csv")
@login_required
def cohorts_csv():
    try:
        choice, query, horizons, report = _load()
    except ReportQueryError as exc:
        return Response(str(exc) + "\n", status=400, mimetype="text/plain")
    header = [*query.by, "customers", "first_order_revenue", "first_order_value",
              *(f"revenue_per_customer_{h}d" for h in horizons)]

    def line(first: list[str], figures: dict) -> list:
        per = figures["revenue_per_customer"]
        return [*first, figures["customers"], figures["first_order_revenue"],
                figures["first_order_value"] or "", *(per[str(h)] if per[str(h)] is not None else ""
                                                      for h in horizons)]

    body = [line([row[d] for d in query.by], row) for row in report["rows"]]
    body.append(line(["(all customers)"] + [""] * (len(query.by) - 1), report["totals"]))
    name = f"cohorts-{choice.site.domain}-{query.date_from}-{query.date_to}-{query.model}.csv"
    return csv_response(write_rows(header, body), name)
