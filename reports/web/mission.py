"""GET /: Mission Control — yesterday and the last 30 days at a glance, per channel."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from flask import render_template, request
from sqlalchemy import exists, select

from reports import digest
from reports.auth import login_required
from reports.charts import bar_chart
from reports.credit import UNATTRIBUTED
from reports.roi import parse_report_query, revenue_by_day, roi_report
from reports.web import bp
from reports.web.context import choose_site
from reports.web.format import money, to_decimal
from tracker.days import days_between, site_today
from tracker.db import get_session
from tracker.errors import ReportQueryError
from tracker.models import Order, TrackedSession
from tracker.touch import SMS_CHANNEL

TOP_CHANNELS = 10


def _has_data(db, site) -> bool:
    return bool(
        db.scalar(select(exists().where(TrackedSession.site_id == site.id)))
        or db.scalar(select(exists().where(Order.site_id == site.id)))
    )


def coverage(report: dict) -> Decimal | None:
    """Attributed ÷ total revenue; None when there is no revenue."""
    total = to_decimal(report["totals"].get("revenue")) or Decimal(0)
    if total <= 0:
        return None
    unattributed = sum(
        (to_decimal(r.get("revenue")) or Decimal(0) for r in report["rows"]
         if r.get("channel") == UNATTRIBUTED),
        Decimal(0),
    )
    return (total - unattributed) / total


def top_channels(rows: list[dict], limit: int = TOP_CHANNELS) -> list[dict]:
    """Channels by revenue, SMS always first when it has any traffic, unattributed left out."""
    channels = [r for r in rows if r.get("channel") != UNATTRIBUTED]
    channels.sort(key=lambda r: to_decimal(r.get("revenue")) or Decimal(0), reverse=True)
    sms = [r for r in channels if r.get("channel") == SMS_CHANNEL]
    others = [r for r in channels if r.get("channel") != SMS_CHANNEL]
    return (sms + others)[:limit]



# The morning email's alerts, shown on top of the page too; worked out at most every few minutes
# per site and process (the spelling check reads a year of visits). Keyed by the site's public id,
# which no other site ever gets (a number may come back once a site is deleted).
ALERTS_TTL = 600.0
_alerts_cache: dict[tuple[str, date], tuple[float, list[str]]] = {}


def _alerts(db, site, yesterday: date, day_rows: list[dict]) -> list[str]:
    key = (site.public_id, yesterday)
    cached = _alerts_cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    found = digest.alerts(db, site, yesterday, datetime.now(UTC), sms_yesterday=digest.sms_revenue(day_rows))
    if len(_alerts_cache) > 1000:
        _alerts_cache.clear()
    _alerts_cache[key] = (time.monotonic() + ALERTS_TTL, found)
    return found


@bp.get("/")
@login_required
def mission_control():
    db = get_session()
    choice = choose_site(db)
    site = choice.site
    if site is None:
        return render_template("mission.html", choice=choice, site_ref=None, empty=True,
                               missing=bool(request.args.get("site")))
    if not _has_data(db, site):
        return render_template(
            "mission.html", choice=choice, site_ref=site.public_id, empty=True, missing=False,
            snippet=f'<script defer src="{request.host_url}t.js" data-site="{site.public_id}"></script>',
            webhook_base=f"{request.host_url}webhooks",
        )

    today = site_today(site)
    yesterday = today - timedelta(days=1)
    month_start = today - timedelta(days=30)
    model = request.args.get("model", "")
    base = {"site": site.public_id, "by": "channel"}
    if model:
        base["model"] = model
    try:
        q_day = parse_report_query(db, {**base, "from": yesterday.isoformat(), "to": yesterday.isoformat()})
        q_month = parse_report_query(
            db, {**base, "from": month_start.isoformat(), "to": yesterday.isoformat()}
        )
    except ReportQueryError as exc:
        return render_template("mission.html", choice=choice, site_ref=site.public_id, empty=False,
                               error=str(exc)), 400
    day = roi_report(db, q_day)
    month = roi_report(db, q_month)
    currency = month["currency"]
    channels = top_channels(month["rows"])
    daily = revenue_by_day(db, q_month, "channel")
    days = list(days_between(month_start, yesterday))
    charts = []
    for row in channels:
        series = daily.get(row["channel"], {})
        points = [(d, series.get(d, Decimal(0))) for d in days]
        charts.append({
            "row": row,
            "points": points,
            "svg": bar_chart(points, title=f"{row['channel']} daily revenue",
                             money=lambda v: money(v, currency)),
        })
    day_channels = {r.get("channel"): r for r in day["rows"]}
    return render_template(
        "mission.html",
        alerts=_alerts(db, site, yesterday, day["rows"]),
        choice=choice,
        site_ref=site.public_id,
        empty=False,
        error=None,
        day=day,
        month=month,
        currency=currency,
        yesterday=yesterday,
        month_start=month_start,
        coverage_day=coverage(day),
        coverage_month=coverage(month),
        channels=channels,
        day_channels=day_channels,
        charts=charts,
        days=days,
        query=q_month,
    )
