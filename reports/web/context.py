"""What a page is about: the chosen site and the date range, from the query string."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import request, session
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.models import Site
from tracker.sites import find_site

PRESETS = {
    "yesterday": "Yesterday",
    "last7": "Last 7 days",
    "last30": "Last 30 days",
    "mtd": "Month to date",
    "custom": "Custom",
}


@dataclass(frozen=True)
class SiteChoice:
    site: Site | None
    sites: list[Site]


def choose_site(db: Session) -> SiteChoice:
    """The site named by ?site=, else the one last looked at, else the first (by domain)."""
    sites = list(db.scalars(select(Site).order_by(Site.domain)))
    ref = request.args.get("site", "").strip()
    site = find_site(db, ref) if ref else None
    if site is None and not ref and session.get("site"):
        site = next((s for s in sites if s.public_id == session["site"]), None)
    if site is None and not ref and sites:
        site = sites[0]
    if site is not None and session.get("site") != site.public_id:
        session["site"] = site.public_id
    return SiteChoice(site=site, sites=sites)



def preset_range(preset: str, today: date) -> tuple[date, date] | None:
    """The dates (inclusive) a preset stands for, relative to the site's today."""
    yesterday = today - timedelta(days=1)
    if preset == "yesterday":
        return yesterday, yesterday
    if preset == "last7":
        return today - timedelta(days=7), yesterday
    if preset == "last30":
        return today - timedelta(days=30), yesterday
    if preset == "mtd":
        return today.replace(day=1), today
    return None


def preset_for(date_from: date, date_to: date, today: date) -> str:
    """Which preset a range matches, or 'custom'."""
    for name in ("yesterday", "last7", "last30", "mtd"):
        if preset_range(name, today) == (date_from, date_to):
            return name
    return "custom"
