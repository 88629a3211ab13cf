"""The nightly build first sessionises page views still waiting from a busy collector."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tracker.cli import main
from tracker.models import TrackedSession, WaitingHit


def test_build_sessionises_waiting_hits(runner, session, site):
    yesterday = datetime.now(UTC) - timedelta(days=1)
    session.add(
        WaitingHit(
            site_id=site.id,
            visitor_key="waiting-visitor",
            ts=yesterday,
            url="https://shop.example/?utm_source=postscript&utm_medium=sms&utm_campaign=winback",
            referrer=None,
        )
    )
    session.commit()

    result = runner.invoke(main, ["reports", "build", "--site", site.public_id])

    assert result.exit_code == 0, result.output
    rows = session.execute(select(TrackedSession.utm_source, TrackedSession.utm_campaign)).all()
    assert rows == [("postscript", "winback")]
    assert session.scalar(select(func.count()).select_from(WaitingHit)) == 0
