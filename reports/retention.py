"""Keeping raw visits only as long as a site wants (`tracker sites retention SITE DAYS`).

The nightly build deletes a site's raw visits (page views, sessions, visitors seen only then,
waiting hits) and the sealed bodies of its settled webhook deliveries older than its retention,
but only days that are rolled up, in batches that never hold the collector up; the delivery rows
stay (their ids keep store retries idempotent). It records the first local day still complete,
`kept_from`, in the site's settings.

From then on the rollups are the record of the days before `kept_from`: the build neither
rebuilds them nor marks them stale, and a report whose range reaches them must be one the rollups
can answer (the rollups' lookback, a split model, a grouping they keep, every later day in the
range rolled up and current where its touches reach back that far). Any other report says so in
one sentence instead of answering with partial figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from reports import traffic
from reports.attribution import AttributionModel, DateBasis
from reports.models import ReportBuild
from reports.rollups import ROLLUP_LOOKBACK, Coverage, coverage
from tracker.days import day_start, days_between, local_day, site_today
from tracker.db import begin_write
from tracker.errors import ReportQueryError
from tracker.models import (
    DeliveryStatus,
    Order,
    Pageview,
    Site,
    TrackedSession,
    Visitor,
    WaitingHit,
    WebhookDelivery,
)
from tracker.privacy import ERASED_BODY
from tracker.sites import KEPT_FROM, kept_from, retention_days, set_setting

# Rows deleted per transaction: short enough that page views waiting for the write lock (SQLite)
# or for a row (PostgreSQL) wait milliseconds.
BATCH = 2000


@dataclass(frozen=True)
class Purged:
    before: date  # raw visits before this local day are gone
    sessions: int
    pageviews: int
    visitors: int
    hits: int
    bodies: int
    unbuilt: tuple[date, date] | None  # days past the retention not deleted: not rolled up yet


def purge(session: Session, site: Site) -> Purged | None:
    """Delete what the site's retention no longer keeps (see the module docstring)."""
    days = retention_days(site)
    if not days:
        return None
    tz = ZoneInfo(site.timezone)
    cutoff = site_today(site) - timedelta(days=days)  # the first day to keep
    s, v, h, w = TrackedSession, Visitor, WaitingHit, WebhookDelivery
    first = session.scalar(select(func.min(s.started_at)).where(s.site_id == site.id))
    start_day = max(min(local_day(first, tz), cutoff) if first else cutoff, kept_from(site) or date.min)
    built = set(session.scalars(select(ReportBuild.day).where(
        ReportBuild.site_id == site.id, ReportBuild.lookback == ROLLUP_LOOKBACK,
        ReportBuild.day >= start_day, ReportBuild.day < cutoff)))
    before, unbuilt = cutoff, None
    for day in days_between(start_day, cutoff - timedelta(days=1)):
        if day not in built:  # only rolled-up days go
            before, unbuilt = day, (day, cutoff - timedelta(days=1))
            break
    site_id = site.id
    session.rollback()  # the deletes are written in batches, each its own write
    edge = day_start(before, tz)

    def sessions(ids):
        views = session.execute(delete(Pageview).where(
            Pageview.site_id == site_id, Pageview.session_id.in_(ids))).rowcount
        return session.execute(delete(s).where(s.site_id == site_id, s.id.in_(ids))).rowcount, views

    def visitors_gone(ids):
        # Their orders stay, without the link (the order's day does not change).
        session.execute(update(Order).where(Order.site_id == site_id, Order.visitor_id.in_(ids))
                        .values(visitor_id=None, updated_at=Order.updated_at))
        return session.execute(delete(v).where(v.site_id == site_id, v.id.in_(ids))).rowcount, 0

    counted = _batches(session, select(s.id).where(s.site_id == site_id, s.started_at < edge), sessions)
    visitors = _batches(
        session,
        select(v.id).where(v.site_id == site_id, v.last_seen_at < edge,
                           ~exists().where(s.site_id == site_id, s.visitor_id == v.id)),
        visitors_gone,
    )
    hits = _batches(session, select(h.id).where(h.site_id == site_id, h.ts < edge),
                    lambda ids: (session.execute(delete(h).where(h.site_id == site_id, h.id.in_(ids)))
                                 .rowcount, 0))
    settled = (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED)
    bodies = _batches(
        session,
        select(w.id).where(w.site_id == site_id, w.received_at < edge, w.status.in_(settled)),
        lambda ids: (session.execute(update(w).where(w.id.in_(ids)).values(
            body=ERASED_BODY, headers={}, status=DeliveryStatus.ERASED)).rowcount, 0),
    )
    begin_write(session)
    site = session.get(Site, site_id)
    if before > (kept_from(site) or date.min):
        set_setting(site, KEPT_FROM, before.isoformat())
    session.commit()
    return Purged(before, counted[0], counted[1], visitors[0], hits[0], bodies[0], unbuilt)


def _batches(session: Session, ids_query, act) -> tuple[int, int]:
    """Run `act(ids)` on BATCH ids at a time, one write transaction each; sums what it returns."""
    total = [0, 0]
    while True:
        begin_write(session)
        ids = list(session.scalars(ids_query.limit(BATCH)))
        if ids:
            for i, n in enumerate(act(ids)):
                total[i] += n
        session.commit()
        if len(ids) < BATCH:
            return total[0], total[1]


# --- what reports may still answer ----------------------------------------------------------


def check_answerable(session: Session, query, cov: Coverage | None = None,
                     grouped_by: tuple[str, ...] | None = None) -> None:
    """Raise ReportQueryError when the query reaches days whose raw visits are gone and the
    rollups cannot answer it exactly (see the module docstring)."""
    first_kept = kept_from(query.site)
    if first_kept is None or query.date_from >= first_kept:
        return
    cov = cov or coverage(session, query.site, query.date_from, query.date_to)
    keeps = retention_days(query.site)
    gone = f"Visits before {first_kept} are no longer kept ({query.site.domain} keeps {keeps} days)"
    if (query.lookback != ROLLUP_LOOKBACK or query.model is AttributionModel.FULL_IMPACT
            or query.date_basis is DateBasis.CLICK):
        raise ReportQueryError(f"{gone}: over earlier days only the nightly rollups answer, by order date, "
                               f"with a {ROLLUP_LOOKBACK}-day lookback and a model other than full impact; "
                               f"change those or start the range on {first_kept}.")
    if traffic.level_of(grouped_by if grouped_by is not None else query.by) is None:
        raise ReportQueryError(f"{gone}: over earlier days the rollups keep totals, channel, and source / "
                               f"medium / campaign, not this grouping; start the range on {first_kept}.")
    # Every day of the range rolled up (the traffic rollups count visitors over the whole range),
    # and no day whose orders' touches reach before first_kept changed since (its credit would be
    # recomputed without them).
    reach = first_kept + timedelta(days=ROLLUP_LOOKBACK)
    if any(d not in cov.built or d in cov.stale and d < reach or d in cov.late_days
           for d in days_between(query.date_from, query.date_to)):
        raise ReportQueryError(f"{gone}, and days of this range are not rolled up yet or changed since; the "
                               f"nightly build brings them up to date, or start the range on {first_kept}.")
