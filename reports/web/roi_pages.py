"""GET /reports/roi, /reports/roi.csv and the model comparison: the same query as the JSON report."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from flask import Response, render_template, request, url_for

from reports.attribution import MODELS, DateBasis
from reports.auth import login_required
from reports.csvsafe import write_rows
from reports.roi import parse_report_query, roi_report
from reports.web import bp
from reports.web.context import PRESETS, choose_site, preset_for, preset_range
from reports.web.format import to_decimal
from reports.web.roi_view import (
    FILTER_PREFIX,
    HIERARCHY,
    LABELS,
    METRICS,
    apply_filters,
    csv_table,
    drill_params,
    filters_from,
    sort_rows,
    summarise,
)
from tracker.days import site_today
from tracker.db import get_session
from tracker.errors import ReportQueryError

# "Group by" choices: channel alone, or the source → term path cut at each depth.
GROUPINGS = [("channel",)] + [HIERARCHY[1 : i + 1] for i in range(1, len(HIERARCHY))]
MODEL_LABELS = {model.value: model.label for model in MODELS}


def report_args(site) -> dict[str, str]:
    """The query string as the JSON report reads it, with a date preset turned into from/to."""
    args = {key: request.args.get(key, "") for key in request.args}
    args["site"] = site.public_id
    preset = args.pop("range", "")
    dates = preset_range(preset, site_today(site))
    if dates:
        args["from"], args["to"] = dates[0].isoformat(), dates[1].isoformat()
    return {k: v for k, v in args.items() if v != "" and not k.startswith(FILTER_PREFIX)
            and k not in ("sort", "dir", "compare")}


def _load(db):
    """(choice, query, report) for the page, or raise ReportQueryError."""
    choice = choose_site(db)
    if choice.site is None:
        raise ReportQueryError(_no_site_message(choice))
    query = parse_report_query(db, report_args(choice.site))
    return choice, query, roi_report(db, query)


def _no_site_message(choice) -> str:
    if request.args.get("site"):
        return "There is no such site; pick one from the list."
    return "No site yet: create one with `tracker sites add DOMAIN`, then paste its snippet."


def _canonical(query, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Explicit parameters for links (CSV, drill-down): what is on screen, not a moving preset."""
    params = {
        "site": _site_ref(query),
        "from": query.date_from.isoformat(),
        "to": query.date_to.isoformat(),
        "model": query.model,
        "lookback": str(query.lookback),
        "by": ",".join(query.by),
    }
    if query.date_basis is not DateBasis.ORDER:
        params["date_basis"] = query.date_basis
    params.update(extra or {})
    return params


def _site_ref(query) -> str:
    site = query.site
    return getattr(site, "public_id", site)


def _view_state(query):
    filters = filters_from(request.args)
    sort = request.args.get("sort", "")
    if sort not in METRICS and sort not in query.by:
        sort = ""
    descending = request.args.get("dir", "desc") != "asc"
    return filters, sort, descending


def _shown_rows(query, report):
    filters, sort, descending = _view_state(query)
    rows = sort_rows(apply_filters(report["rows"], filters), sort, descending)
    subtotal = summarise(rows) if filters else None
    return filters, sort, descending, rows, subtotal


def _state_params(filters, sort, descending) -> dict[str, str]:
    params = {FILTER_PREFIX + d: v for d, v in filters.items()}
    if sort:
        params["sort"] = sort
        params["dir"] = "desc" if descending else "asc"
    return params


@bp.get("/reports/roi")
@login_required
def roi():
    db = get_session()
    try:
        choice, query, report = _load(db)
    except ReportQueryError as exc:
        return _error_page("roi.html", str(exc)), 400
    filters, sort, descending, rows, subtotal = _shown_rows(query, report)
    base = _canonical(query, _state_params(filters, sort, descending))

    def link(**changes) -> str:
        params = {**base, **changes}
        return url_for("pages.roi") + "?" + urlencode({k: v for k, v in params.items() if v is not None})

    def sort_link(column: str) -> str:
        flip = "asc" if sort == column and descending else "desc"
        return link(sort=column, dir=flip)

    # Built once: a page of 500 rows needs 500 links, each only adds its own filter values.
    drill_prefix = url_for("pages.roi") + "?" + urlencode(
        {k: v for k, v in _canonical(query).items() if k != "by"}
    ) + "&"

    def drill_link(row) -> str | None:
        params = drill_params(row, query.by, filters)
        if params is None:
            return None
        return drill_prefix + urlencode(params)

    crumbs = _breadcrumbs(query, filters)
    return render_template(
        "roi.html",
        **_page_context(choice, query, report, filters, sort, descending, sort_link),
        rows=rows,
        subtotal=subtotal,
        metrics=METRICS,
        drill_link=drill_link,
        crumbs=crumbs,
        csv_url=url_for("pages.roi_csv") + "?" + urlencode(base),
        compare_url=url_for("pages.compare") + "?" + urlencode(base),
    )


def _page_context(choice, query, report, filters, sort, descending, sort_link) -> dict:
    """What the ROI and comparison pages share: the site, the query pickers, filters and sorting."""
    return dict(
        error=None,
        choice=choice,
        site_ref=choice.site.public_id,
        query=query,
        report=report,
        filters=filters,
        sort=sort,
        descending=descending,
        sort_link=sort_link,
        labels=LABELS,
        presets=PRESETS,
        preset=preset_for(query.date_from, query.date_to, site_today(choice.site)),
        groupings=GROUPINGS,
        models=MODEL_LABELS,
    )


def _breadcrumbs(query, filters):
    """(label, url) from all traffic down to the current filter; the last one is the page itself."""
    crumbs = []
    if not filters:
        return crumbs
    dims = [d for d in HIERARCHY if d in filters]
    top_by = ",".join(d for d in query.by if d not in filters) or query.by[-1]
    base = _canonical(query)
    crumbs.append(("All traffic", url_for("pages.roi") + "?" + urlencode({**base, "by": top_by})))
    for depth, dim in enumerate(dims, start=1):
        kept = {FILTER_PREFIX + d: filters[d] for d in dims[:depth]}
        by = [*dims[:depth], *[d for d in query.by if d not in dims[:depth]]]
        crumbs.append(
            (f"{LABELS[dim]}: {filters[dim]}",
             url_for("pages.roi") + "?" + urlencode({**base, **kept, "by": ",".join(by)}))
        )
    return crumbs


def _error_page(template: str, message: str):
    db = get_session()
    choice = choose_site(db)
    return render_template(
        template, error=message, choice=choice,
        site_ref=choice.site.public_id if choice.site else None,
        presets=PRESETS, groupings=GROUPINGS, models=MODEL_LABELS, query=None, preset="custom",
    )


@bp.get("/reports/roi.csv")
@login_required
def roi_csv():
    db = get_session()
    try:
        choice, query, report = _load(db)
    except ReportQueryError as exc:
        return Response(str(exc) + "\n", status=400, mimetype="text/plain")
    filters, _, _, rows, subtotal = _shown_rows(query, report)
    header, body = csv_table(query.by, rows, subtotal, "(shown rows)") if subtotal else csv_table(
        query.by, rows, None
    )
    if subtotal is not None:
        body.append(csv_table(query.by, [], report["totals"], "(all traffic)")[1][0])
    else:
        body.append(csv_table(query.by, [], report["totals"])[1][0])
    dated = "-by-click" if query.date_basis is DateBasis.CLICK else ""
    name = f"roi-{choice.site.domain}-{query.date_from}-{query.date_to}-{query.model}{dated}.csv"
    return csv_response(write_rows(header, body), name)


def csv_response(text: str, filename: str) -> Response:
    safe_name = "".join(c if c.isalnum() or c in "-._" else "_" for c in filename)
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{safe_name}"'
    return response


# --- model comparison ----------------------------------------------------------------------------


def _comparison(db, query):
    merged: dict[tuple, dict] = {}
    totals = {}
    for model in MODELS:
        report = roi_report(db, dataclasses.replace(query, model=model))
        totals[model] = report["totals"].get("revenue")
        for row in report["rows"]:
            key = tuple(row.get(d) for d in query.by)
            entry = merged.setdefault(key, {**{d: row.get(d) for d in query.by}, "cost": row.get("cost")})
            entry[model] = row.get("revenue")
    return list(MODELS), list(merged.values()), totals, report


@bp.get("/reports/compare")
@login_required
def compare():
    db = get_session()
    try:
        choice, query, _ = _load(db)
    except ReportQueryError as exc:
        return _error_page("compare.html", str(exc)), 400
    models, rows, totals, report = _comparison(db, query)
    filters, sort, descending, rows = _compared_rows(query, models, rows)
    base = _canonical(query, {FILTER_PREFIX + d: v for d, v in filters.items()})

    def sort_link(column: str) -> str:
        flip = "asc" if sort == column and descending else "desc"
        return url_for("pages.compare") + "?" + urlencode({**base, "sort": column, "dir": flip})

    return render_template(
        "compare.html",
        **_page_context(choice, query, report, filters, sort, descending, sort_link),
        rows=rows,
        totals=totals,
        model_list=models,
        csv_url=url_for("pages.compare_csv") + "?" + urlencode({**base, "sort": sort,
                                                                 "dir": "desc" if descending else "asc"}),
        roi_url=url_for("pages.roi") + "?" + urlencode(base),
    )


def _compared_rows(query, models, rows):
    """Filter and sort the comparison rows as the request asks; the page and its CSV agree."""
    filters = filters_from(request.args)
    rows = apply_filters(rows, filters)
    sort = request.args.get("sort", "")
    if sort not in models and sort not in query.by and sort != "cost":
        sort = "last_click" if "last_click" in models else models[0]
    descending = request.args.get("dir", "desc") != "asc"
    rows = sort_rows(rows, sort, descending) if sort in query.by else _sort_money(rows, sort, descending)
    return filters, sort, descending, rows


def _sort_money(rows, key, descending):
    present = [r for r in rows if to_decimal(r.get(key)) is not None]
    missing = [r for r in rows if to_decimal(r.get(key)) is None]
    present.sort(key=lambda r: to_decimal(r.get(key)), reverse=descending)
    return present + missing


@bp.get("/reports/compare.csv")
@login_required
def compare_csv():
    db = get_session()
    try:
        choice, query, _ = _load(db)
    except ReportQueryError as exc:
        return Response(str(exc) + "\n", status=400, mimetype="text/plain")
    models, rows, totals, last_report = _comparison(db, query)
    _, _, _, rows = _compared_rows(query, models, rows)
    header = [*query.by, *[f"revenue_{m}" for m in models], "cost"]
    body = [[r.get(d, "") for d in query.by] + [r.get(m) for m in models] + [r.get("cost")] for r in rows]
    total_cost = last_report["totals"]["cost"]
    body.append(["(total)"] + [""] * (len(query.by) - 1) + [totals[m] for m in models] + [total_cost])
    dated = "-by-click" if query.date_basis is DateBasis.CLICK else ""
    name = f"models-{choice.site.domain}-{query.date_from}-{query.date_to}{dated}.csv"
    return csv_response(write_rows(header, body), name)
