"""The SMS link builder and the UTM hygiene view, checked against recorded sessions."""

from __future__ import annotations

from flask import render_template, request

from reports.auth import login_required
from reports.naming import (
    HISTORY,
    PLATFORMS,
    LinkError,
    build_link,
    clean_value,
    conflicts,
    find_splits,
    recorded_values,
)
from reports.web import bp
from reports.web.context import choose_site
from tracker.db import get_session


@bp.route("/sms/links", methods=["GET", "POST"])
@login_required
def sms_links():
    db = get_session()
    choice = choose_site(db)
    fields = ("url", "source", "campaign", "content", "term")
    form = {name: request.form.get(name, "")[:2000] for name in fields}
    link = error = None
    warnings = []
    if request.method == "POST" and choice.site is not None:
        try:
            link = build_link(form["url"], form["source"], form["campaign"], form["content"], form["term"])
        except LinkError as exc:
            error = str(exc)
        wanted = {"source": form["source"], "medium": "sms", "campaign": form["campaign"],
                  "content": form["content"], "term": form["term"]}
        warnings = conflicts(wanted, recorded_values(db, choice.site))
    return render_template(
        "sms_links.html",
        choice=choice,
        site_ref=choice.site.public_id if choice.site else None,
        form=form,
        link=link,
        error=error,
        warnings=warnings,
        platforms=PLATFORMS,
        cleaned={k: clean_value(v) for k, v in form.items() if k != "url"},
    )


@bp.get("/sms/hygiene")
@login_required
def hygiene():
    db = get_session()
    choice = choose_site(db)
    splits = find_splits(recorded_values(db, choice.site)) if choice.site else []
    return render_template(
        "hygiene.html",
        choice=choice,
        site_ref=choice.site.public_id if choice.site else None,
        splits=splits,
        days=HISTORY.days,
    )
