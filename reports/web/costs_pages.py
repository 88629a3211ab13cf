"""Spend: upload a cost CSV or enter one day's cost by hand; the import rules live in reports.costs."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from reports.auth import login_required
from reports.costs import parse_cost_rows, read_csv, save_costs
from reports.web import bp
from reports.web.context import choose_site
from tracker.db import begin_write, get_session
from tracker.errors import CostError
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


ENTRY_FIELDS = ("date", "source", "medium", "campaign", "content", "term", "cost")


@bp.post("/costs")
@login_required
def costs_submit():
    db = get_session()
    choice = choose_site(db)
    site = choice.site
    if site is None:
        flash("Create a site first.")
        return redirect(url_for("pages.costs"))
    form = {name: request.form.get(name, "")[:255] for name in ENTRY_FIELDS}
    try:
        if request.form.get("action") == "upload":
            rows = read_csv(_uploaded_text(), site.currency)
        else:
            rows = parse_cost_rows([form], site.currency)
    except CostError as exc:
        return render_template(
            "costs.html", choice=choice, site_ref=site.public_id, recent=_recent(db, site),
            form=form if request.form.get("action") != "upload" else {}, error=str(exc),
        ), 400
    db.commit()  # end the read transaction so that the write starts as a writer
    begin_write(db)
    save_costs(db, site.id, rows)
    db.commit()
    flash(f"Saved {len(rows)} cost row{'s' if len(rows) != 1 else ''}.")
    return redirect(url_for("pages.costs", site=site.public_id))


def _uploaded_text() -> str:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise CostError("Choose a CSV file to upload.")
    data = upload.stream.read(UPLOAD_LIMIT + 1)
    if len(data) > UPLOAD_LIMIT:
        raise CostError(f"The file is larger than {UPLOAD_LIMIT // (1024 * 1024)} MB; split it in parts.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CostError("The file is not UTF-8 text; save it as CSV UTF-8 and upload it again.") from None
