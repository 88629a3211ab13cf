"""Spend: upload a cost CSV or enter one day's cost by hand; the import rules live in reports.costs."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select

from reports.auth import login_required
from reports.web import bp
from reports.web.context import choose_site
from tracker.db import get_session
from tracker.models import Cost

RECENT_COSTS = 50
UPLOAD_LIMIT = 2 * 1024 * 1024


def _recent(db, site):
    return list(
        db.scalars(
            select(Cost)
            .where(Cost.site_id == site.id)
            .order_by(Cost.date.desc(), Cost.id.desc())
            .limit(RECENT_COSTS)
        )
    )


@bp.get("/costs")
@login_required
def costs():
    db = get_session()
    choice = choose_site(db)
    return render_template(
        "costs.html",
        choice=choice,
        site_ref=choice.site.public_id if choice.site else None,
        recent=_recent(db, choice.site) if choice.site else [],
        form={},
        error=None,
    )


@bp.post("/costs")
@login_required
def costs_submit():
    db = get_session()
    choice = choose_site(db)
    if choice.site is None:
        flash("Create a site first.")
        return redirect(url_for("pages.costs"))
    flash("Cost import is not available yet.")
    return redirect(url_for("pages.costs", site=choice.site.public_id))
