"""The nightly job inside `tracker serve`: with two servers on one database and the clock past the
sites' build time, yesterday is built once and the morning email is sent once."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from reports.models import NightlyRun, ReportBuild
from tests.reports.test_digest import smtp, store  # noqa: F401  (fixtures)
from tests.test_database_waits import Server


def test_two_servers_build_and_send_once(config_env, smtp, store, session):  # noqa: F811
    site, yesterday = store
    env = {**config_env, "TRACKER_NIGHTLY": "1", "TRACKER_NIGHTLY_AT": "00:00",
           "TRACKER_NIGHTLY_CHECK": "0.3", "TRACKER_SMTP_URL": smtp.url,
           "TRACKER_MAIL_FROM": "reports@tracker.example"}
    servers = [Server(env), Server(env)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            session.rollback()
            finished = session.scalar(select(func.count()).select_from(NightlyRun).where(
                NightlyRun.site_id == site.id, NightlyRun.finished_at.is_not(None)))
            if finished and len(smtp.messages) >= 3:
                break
            time.sleep(0.2)
        time.sleep(1.5)  # several more looks by both servers
    finally:
        logs = [server.stop() for server in servers]
    session.rollback()
    runs = session.execute(select(NightlyRun.day, NightlyRun.finished_at)
                           .where(NightlyRun.site_id == site.id)).all()
    assert [day for day, _ in runs] == [yesterday] and runs[0][1] is not None
    assert session.scalar(select(func.count()).select_from(ReportBuild).where(
        ReportBuild.site_id == site.id, ReportBuild.day == yesterday)) == 1
    # Each site's digest once to each user who sees it: the admin both, the other site's viewer one.
    sent = sorted((m["To"], m["Subject"].split(" on ")[0]) for m in smtp.messages)
    assert sent == [("client@other.example", "other.example"), ("owner@shop.example", "other.example"),
                    ("owner@shop.example", "shop.example")]
    assert sum(log.count("nightly: shop.example: built") for log in logs) == 1, logs
    assert not any("Traceback" in log for log in logs)
