"""The nightly job inside `tracker serve`: shortly after midnight in each site's zone (01:15 local by
default, TRACKER_NIGHTLY_AT), yesterday's rollups are built (with the refresh of changed days and
the retention), then the morning email goes out. Nobody has to run a command.

Every worker process of every host looks every TRACKER_NIGHTLY_CHECK seconds; the database decides
which one works: a site's run for a day is a row in `nightly_runs`, inserted by exactly one of them
(the others' inserts conflict). A run not finished within STALE (its process died) is taken over.
A mail server that fails is logged and does not undo the build; `tracker digest send` retries.
`tracker serve --no-nightly` (TRACKER_NIGHTLY=0) leaves the schedule to cron or systemd instead.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from reports import digest
from reports.build import build_site, refresh_site
from reports.models import NightlyRun
from reports.retention import purge
from tracker.collect.sessionise import sessionise_backlog
from tracker.config import Config
from tracker.db import begin_write, make_engine, utcnow
from tracker.errors import TrackerError
from tracker.mail import MailServer
from tracker.models import Site

log = logging.getLogger(__name__)

# A run still unfinished after this long is taken to have died with its process.
STALE = timedelta(hours=2)
# Waiting page views sessionised before a build, at most (the collectors take the rest).
SESSIONISE_ROUNDS = 100

_started: dict[int, threading.Thread] = {}  # per process id


def start(config: Config) -> None:
    """Start this process's scheduler thread (once per process)."""
    pid = os.getpid()
    if not config.nightly or pid in _started:
        return
    thread = threading.Thread(target=_loop, args=(config,), name="tracker-nightly", daemon=True)
    _started[pid] = thread
    thread.start()


def _loop(config: Config) -> None:
    engine = make_engine(config.database_url, config.waits)
    stop = threading.Event()
    while not stop.wait(config.nightly_check):
        try:
            run_due(engine, config)
        except Exception:  # never fatal to the server: logged, and the next look tries again
            log.exception("nightly job failed")


def due(site: Site, at, now: datetime) -> date | None:
    """The local day whose night has come for `site` (its yesterday), or None before `at`."""
    local = now.astimezone(ZoneInfo(site.timezone))
    return local.date() - timedelta(days=1) if local.time() >= at else None


def run_due(engine, config: Config, now: datetime | None = None) -> list[str]:
    """Run every site whose night has come and that no process has claimed yet; returns what ran."""
    now = now or utcnow()
    ran = []
    with Session(engine, expire_on_commit=False) as session:
        sites = list(session.scalars(select(Site).order_by(Site.id)))
        session.rollback()
        for site in sites:
            day = due(site, config.nightly_at, now)
            if day is None or not claim(session, site.id, day, now):
                continue
            ran.append(run_site(session, engine, site, day, config))
    return ran


def claim(session: Session, site_id: int, day: date, now: datetime) -> bool:
    """Whether this process takes the site's run for `day` (inserted its row, or took a dead one's)."""
    if session.get(NightlyRun, (site_id, day)) is not None:
        session.rollback()
        if not _stale(session, site_id, day, now):
            return False
    try:
        begin_write(session)
        session.add(NightlyRun(site_id=site_id, day=day, started_at=now))
        session.commit()
        return True
    except IntegrityError:  # another process inserted it first
        session.rollback()
        return _stale(session, site_id, day, now)


def _stale(session: Session, site_id: int, day: date, now: datetime) -> bool:
    begin_write(session)
    taken = session.execute(
        update(NightlyRun)
        .where(NightlyRun.site_id == site_id, NightlyRun.day == day, NightlyRun.finished_at.is_(None),
               NightlyRun.started_at < now - STALE)
        .values(started_at=now)
    ).rowcount
    session.commit()
    return taken == 1


def run_site(session: Session, engine, site: Site, day: date, config: Config) -> str:
    """Build `day` for the site (and what changed before), apply its retention, send the digest."""
    site_id, domain = site.id, site.domain
    for _ in range(SESSIONISE_ROUNDS):
        if not sessionise_backlog(engine):
            break
    build_site(session, site, day, day)
    refresh_site(session, site)
    purge(session, site)
    outcome = f"{domain}: built {day}"
    if config.smtp_url:
        try:
            server = MailServer.from_url(config.smtp_url)
            sent = digest.deliver(session, site, day, server, config.mail_from, config.base_url)
            outcome += f", digest sent to {sent.sent}"
        except (TrackerError, SQLAlchemyError) as exc:  # loud, never fatal to the build
            log.error("nightly digest of %s for %s not sent: %s", domain, day, exc)
            outcome += ", digest not sent"
    session.rollback()  # end any read: the end of the run is written as the writer
    begin_write(session)
    session.execute(update(NightlyRun).where(NightlyRun.site_id == site_id, NightlyRun.day == day)
                    .values(finished_at=utcnow()))
    session.commit()
    log.warning("nightly: %s", outcome)
    return outcome
