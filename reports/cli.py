"""`tracker costs import` and `tracker reports build`."""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from reports import claims
from reports.build import build_site, refresh_site
from reports.costs import read_csv, save_costs
from reports.links import unlinked_count
from reports.retention import Purged, purge
from reports.roi import FIRST_DATE, LAST_DATE
from reports.rollups import ROLLUP_LOOKBACK
from tracker.collect.sessionise import sessionise_backlog
from tracker.console import CommandError, db_session, fewer_collections, load_config, pick_site, user_errors
from tracker.days import site_today
from tracker.db import begin_write, make_engine
from tracker.errors import ClaimError, CostError
from tracker.identity import normalise_email
from tracker.mail import MailServer
from tracker.models import Site
from tracker.money import from_minor
from tracker.sites import kept_from, require_site, retention_days
from tracker.waits import unanswered


@click.group("costs")
def costs_group():
    """Import ad and SMS spend."""


@click.group("reports")
def reports_group():
    """Build attribution rollups."""


@click.group("claims")
def claims_group():
    """Import what SMS and email platforms report as their attributed revenue."""


@claims_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--site", "site_ref", help="Site id or domain (optional when there is one site).")
@user_errors
def claims_import(file: Path, site_ref: str | None) -> None:
    """Import FILE.csv: date,platform,campaign,attributed_revenue[,attributed_orders,clicks,sends,currency].

    Keys are normalised like UTM values; a day, platform and campaign imported again replaces the
    earlier claim. Any bad line stops the import, and nothing is saved.
    """
    text = _read_text(file)
    with db_session() as session:
        begin_write(session)
        site = pick_site(session, site_ref)
        try:
            rows = claims.read_csv(text, site.currency)
        except ClaimError as exc:
            raise CommandError(f"{file}: {exc}") from None
        saved = claims.save_claims(session, site.id, rows)
        domain, currency = site.domain, site.currency
    total = sum(r["revenue_minor"] for r in rows)
    click.echo(f"Imported {saved} claim(s) for {domain} ({_money(total, currency)} claimed in total).")


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CommandError(f"No file {str(file)!r}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"{file} is not UTF-8 text; export the CSV as UTF-8.") from None
    except OSError as exc:
        raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None


@click.group("digest")
def digest_group():
    """The morning email."""


@digest_group.command("send")
@click.option("--site", "site_ref", help="Site id or domain; default: every site.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="The local day; default yesterday.")
@click.option("--to", "to", help="Send only to this address (default: each report user who sees the site).")
@user_errors
def digest_send(site_ref: str | None, day, to: str | None) -> None:
    """Email the digest of yesterday (or --date): figures, SMS campaigns, alerts; once per recipient."""
    # Loaded here: the email's templates (Jinja2), which `tracker reports build` does not need.
    from reports import digest

    config = load_config()
    server = MailServer.from_url(config.smtp_url)
    engine = make_engine(config.database_url, config.waits)
    try:
        with Session(engine, expire_on_commit=False) as session:
            sites = [require_site(session, site_ref)] if site_ref else list(
                session.scalars(select(Site).order_by(Site.id)))
            for site in sites:
                when = day.date() if day else site_today(site) - timedelta(days=1)
                done = digest.deliver(session, site, when, server, config.mail_from, config.base_url,
                                      normalise_email(to) if to else None)
                if not done.sent:
                    click.echo(f"{site.domain}, {when}: nothing to send ("
                               f"{'already sent' if done.recipients else 'no report user sees this site'}).")
                    continue
                click.echo(f"Sent the digest of {site.domain} for {when} to {done.sent} recipient(s)"
                           + (f"; {done.had} had it already." if done.had else "."))
    finally:
        engine.dispose()


@costs_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--site", "site_ref", help="Site id or domain (optional when there is one site).")
@user_errors
def costs_import(file: Path, site_ref: str | None) -> None:
    """Import spend from FILE.csv: date,source,medium,campaign,cost[,content,term,currency].

    Keys are normalised like UTM values; a row with the same day and key as an earlier import
    replaces it. Any bad line stops the import, and nothing is saved.
    """
    text = _read_text(file)
    with db_session() as session:
        site = pick_site(session, site_ref)
        try:
            rows = read_csv(text, site.currency)
        except CostError as exc:
            raise CommandError(f"{file}: {exc}") from None
        site_id, domain = site.id, site.domain
    config = load_config()
    engine = make_engine(config.database_url, config.waits)
    try:
        with Session(engine) as session:
            begin_write(session)
            saved = save_costs(session, site_id, rows)
            session.commit()
    finally:
        engine.dispose()
    total = sum(r["cost_minor"] for r in rows)
    click.echo(f"Imported {saved} spend row(s) for {domain} ({_money(total, rows[0]['currency'])} in total).")


def _money(minor: int, currency: str) -> str:
    return f"{from_minor(minor, currency)} {currency}"


@reports_group.command("build")
@click.option("--site", "site_ref", help="Site id or domain; default: every site.")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), help="First local day, YYYY-MM-DD.")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), help="Last local day; default yesterday.")
@user_errors
def reports_build(site_ref: str | None, date_from, date_to) -> None:
    """Build the attribution rollups (default: yesterday in each site's time zone); safe to rerun.

    When the database does not answer, the build waits and tries again (BUILD_ATTEMPTS in all),
    then stops with one sentence; the days built before stay built."""
    fewer_collections()
    config = load_config()
    engine = make_engine(config.database_url, config.waits)
    try:
        for attempt in range(1, BUILD_ATTEMPTS + 1):
            try:
                return _build(engine, site_ref, date_from, date_to)
            except SQLAlchemyError as exc:
                if not unanswered(exc):
                    raise
                where = _database_name(engine)
                if attempt == BUILD_ATTEMPTS:
                    raise CommandError(
                        f"The database ({where}) did not answer in {BUILD_ATTEMPTS} attempts; the days built "
                        "before stay built: run the build again once it answers."
                    ) from None
                pause = BUILD_RETRY_PAUSE * attempt
                click.echo(f"The database ({where}) did not answer; trying again in {pause:g} s "
                           f"(attempt {attempt + 1} of {BUILD_ATTEMPTS})...", err=True)
                engine.dispose()  # its connections may be broken
                time.sleep(pause)
    finally:
        engine.dispose()


# Tries of `tracker reports build` when the database does not answer, and the pause before the
# next (growing with each): a database restarting, or failing over, answers within a minute.
BUILD_ATTEMPTS = 3
BUILD_RETRY_PAUSE = 10.0


def _database_name(engine) -> str:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return url.database or "memory"
    return f"{url.host or 'local socket'}:{url.port or 5432}/{url.database}"


def _build(engine, site_ref: str | None, date_from, date_to) -> None:
    _sessionise_waiting_hits(engine)
    with Session(engine, expire_on_commit=False) as session:
        if site_ref:
            sites = [require_site(session, site_ref)]
        else:
            sites = list(session.scalars(select(Site).order_by(Site.id)))
        session.rollback()
        if not sites:
            click.echo("No sites yet; nothing to build.")
            return
        for site in sites:
            yesterday = site_today(site) - timedelta(days=1)
            last: date = date_to.date() if date_to else yesterday
            first: date = date_from.date() if date_from else last
            if first > last:
                raise CommandError(f"--from {first} is after --to {last}; swap them.")
            for option, day in (("--from", first), ("--to", last)):
                if not FIRST_DATE <= day <= LAST_DATE:
                    raise CommandError(f"{option} {day} is outside {FIRST_DATE} to {LAST_DATE}.")
            first_kept = kept_from(site)
            if first_kept is not None and first < first_kept:
                raise CommandError(f"Visits of {site.domain} before {first_kept} are no longer kept, so "
                                   f"their rollups stay as built; build from {first_kept} on.")
            days = (last - first).days + 1
            pending = unlinked_count(session, site.id)
            session.rollback()
            if pending >= LINK_NOTICE:
                click.echo(f"Linking {pending} visits of {site.domain} to their visitors' earlier ones "
                           "(once after an upgrade; about a minute per million)...", err=True)
            label = f"{site.domain} {first}..{last}"
            with click.progressbar(length=days, label=label, file=sys.stderr,
                                   show_pos=True) as bar:
                build_site(session, site, first, last, on_day=lambda _day: bar.update(1))
            click.echo(f"Built {days} day(s) of rollups for {site.domain} ({first} to {last}, "
                       f"lookback {ROLLUP_LOOKBACK} days).")
            refreshed = refresh_site(session, site)
            if refreshed:
                click.echo(f"Rebuilt {refreshed} earlier day(s) of {site.domain} whose orders, refunds, "
                           "people or visits changed since.")
            purged = purge(session, site)
            if purged is not None:
                _say_purged(site, purged)


def _say_purged(site: Site, purged: Purged) -> None:
    if purged.sessions or purged.visitors or purged.hits or purged.bodies:
        click.echo(f"Deleted {site.domain}'s raw visits before {purged.before} (it keeps "
                   f"{retention_days(site)} days): {purged.sessions} sessions, {purged.pageviews} page "
                   f"views, {purged.visitors} visitors, {purged.hits} waiting hits, {purged.bodies} webhook "
                   "bodies.")
    if purged.unbuilt:
        first, last = purged.unbuilt
        click.echo(f"Kept {site.domain}'s visits of {first} to {last} past its retention: they are not "
                   f"rolled up yet; run `tracker reports build --site {site.public_id} --from {first} "
                   f"--to {last}`.", err=True)


# Announce the one-off linking of visits stored before they carried links when it is this large.
LINK_NOTICE = 50_000


def _sessionise_waiting_hits(engine, rounds: int = 1000) -> None:
    """Page views acknowledged under load wait in `hits`; turn them into sessions before a build.

    Bounded, so a build under sustained traffic still starts; what arrives later is picked up
    by the collectors and by the next build's change detection.
    """
    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM hits LIMIT 1").first() is None:
            return
    for _ in range(rounds):
        if not sessionise_backlog(engine):
            return
