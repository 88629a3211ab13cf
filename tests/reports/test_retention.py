"""Retention (`tracker sites retention SITE DAYS`): the nightly build deletes raw visits older than
the site keeps, once rolled up; reports over those days come from the rollups or say in one
sentence why they cannot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, update

from tracker.cli import main
from tracker.credentials import hash_token, new_token
from tracker.days import day_start, site_today
from tracker.models import ApiToken, DeliveryStatus, Order, Pageview, Site, TrackedSession, WebhookDelivery
from tracker.sites import kept_from


def _demo(runner, session):
    result = runner.invoke(main, ["demo", "--sessions", "4000", "--days", "12", "--seed", "3"])
    assert result.exit_code == 0, result.output
    site = session.scalar(select(Site).where(Site.domain == "demo.example"))
    token = new_token()
    session.add(ApiToken(name="r", token_hash=hash_token(token), prefix=token[:8]))
    session.commit()
    return site, {"Authorization": f"Bearer {token}"}


def _report(client, site, headers, first, last, **params):
    query = {"site": site.public_id, "from": str(first), "to": str(last), **params}
    return client.get("/api/reports/roi", query_string=query, headers=headers)


def test_old_visits_go_and_reports_over_them_come_from_the_rollups(runner, client, session):
    site, headers = _demo(runner, session)
    site_id, today = site.id, site_today(site)
    first, last = today - timedelta(days=13), today - timedelta(days=1)
    built = runner.invoke(main, ["reports", "build", "--site", site.public_id, "--from", str(first),
                                 "--to", str(last)])
    assert built.exit_code == 0, built.output
    by = {"by": "source,medium,campaign"}
    before = _report(client, site, headers, first, last, **by).get_json()
    orders_before = session.scalar(select(func.count()).select_from(Order))
    session.rollback()

    assert runner.invoke(main, ["sites", "retention", site.public_id, "5"]).exit_code == 0
    nightly = runner.invoke(main, ["reports", "build", "--site", site.public_id])
    assert nightly.exit_code == 0, nightly.output
    kept = today - timedelta(days=5)
    assert f"Deleted demo.example's raw visits before {kept} (it keeps 5 days): " in nightly.output

    session.rollback()  # a fresh snapshot (reading an expired `site` began one before the build)
    site = session.get(Site, site_id)
    assert kept_from(site) == kept
    edge = day_start(kept, ZoneInfo(site.timezone))
    assert session.scalar(select(func.count()).where(TrackedSession.started_at < edge)) == 0
    assert session.scalar(select(func.count()).where(TrackedSession.started_at >= edge)) > 0
    assert session.scalar(select(func.count()).select_from(Pageview).join(TrackedSession, and_(
        TrackedSession.site_id == Pageview.site_id, TrackedSession.id == Pageview.session_id)).where(
        TrackedSession.started_at < edge)) == 0
    assert session.scalar(select(func.count()).select_from(Order)) == orders_before  # revenue stays
    session.rollback()

    # The same report, over the same days, from the rollups: the same figures.
    after = _report(client, site, headers, first, last, **by)
    assert after.status_code == 200, after.get_json()
    assert after.get_json()["rows"] == before["rows"] and after.get_json()["totals"] == before["totals"]
    # What only the deleted visits could answer says so, in one sentence.
    for params in ({"lookback": "7"}, {"by": "campaign,content"}, {"model": "full_impact"}):
        refused = _report(client, site, headers, first, last, **params)
        assert refused.status_code == 400
        error = refused.get_json()["error"]
        assert error.startswith(f"Visits before {kept} are no longer kept (demo.example keeps 5 days)")
        assert error.count(". ") == 0 and error.endswith(".")
    # From the first kept day on, anything goes.
    assert _report(client, site, headers, kept, last, by="campaign,content", lookback="7").status_code == 200
    # Days before it are not rebuilt (their rollups are the record now).
    again = runner.invoke(main, ["reports", "build", "--site", site.public_id, "--from", str(first)])
    assert again.exit_code == 1
    assert again.output.strip() == (f"Visits of demo.example before {kept} are no longer kept, so their "
                                    f"rollups stay as built; build from {kept} on.")


def test_old_webhook_bodies_go_and_their_ids_keep_retries_idempotent(runner, client, session, site):
    from tests.webhooks.conftest import ORDERS_SECRET, standard_headers
    from tracker.sites import add_secret

    add_secret(session, site, "orders", ORDERS_SECRET)
    session.commit()
    body = json.dumps({"id": "OLD-1", "created_at": "2026-10-01T10:00:00Z", "total": "10.00",
                       "currency": "USD", "status": "paid"}).encode()
    headers = standard_headers(body, msg_id="msg-old-1")
    assert client.post(f"/webhooks/orders/{site.public_id}", data=body, headers=headers).status_code == 200
    session.execute(update(WebhookDelivery).values(received_at=datetime.now(UTC) - timedelta(days=40)))
    session.commit()
    assert runner.invoke(main, ["sites", "retention", site.public_id, "30"]).exit_code == 0
    nightly = runner.invoke(main, ["reports", "build", "--site", site.public_id])
    assert nightly.exit_code == 0, nightly.output
    assert "1 webhook bodies" in nightly.output
    session.expire_all()
    delivery = session.scalar(select(WebhookDelivery))
    assert (delivery.status, delivery.body) == (DeliveryStatus.ERASED, b"")
    session.rollback()
    retry = client.post(f"/webhooks/orders/{site.public_id}", data=body,
                        headers=standard_headers(body, msg_id="msg-old-1"))
    assert retry.status_code == 200 and retry.get_json()["status"] == "duplicate"
    assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_retention_days_are_checked(runner, site):
    result = runner.invoke(main, ["sites", "retention", site.public_id, "-3"])
    assert result.exit_code != 0
    result = runner.invoke(main, ["sites", "retention", site.public_id, "99999"])
    assert result.exit_code == 1
    assert result.output.strip() == "Keep visits for 0 (for ever) to 3650 days, not 99999."
