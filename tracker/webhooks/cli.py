"""`tracker webhooks ...`: operate the raw delivery inbox."""

from __future__ import annotations

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.console import CommandError, db_session, load_config, user_errors
from tracker.db import make_engine
from tracker.models import DeliveryStatus, Site, WebhookDelivery
from tracker.sites import require_site
from tracker.webhooks.inbox import pending_ids, process


@click.group("webhooks")
def webhooks_group():
    """Inspect and replay stored webhook deliveries."""


def _site_id(session, ref: str | None) -> int | None:
    if ref is None:
        return None
    return require_site(session, ref).id


@webhooks_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in DeliveryStatus]),
              help="Only deliveries in this state.")
@click.option("--site", "site_ref", help="Only this site (public id or domain).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@user_errors
def webhooks_list(status: str | None, site_ref: str | None, limit: int) -> None:
    """Count deliveries by state, then list the newest (failed ones show their error)."""
    with db_session() as session:
        site_id = _site_id(session, site_ref)
        counts = select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        rows = (
            select(WebhookDelivery, Site.domain)
            .join(Site, Site.id == WebhookDelivery.site_id)
            .order_by(WebhookDelivery.received_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        if site_id is not None:
            counts = counts.where(WebhookDelivery.site_id == site_id)
            rows = rows.where(WebhookDelivery.site_id == site_id)
        if status:
            rows = rows.where(WebhookDelivery.status == status)
        totals = dict(session.execute(counts).all())
        click.echo("  ".join(f"{name}: {totals.get(name, 0)}" for name in DeliveryStatus))
        for delivery, domain in session.execute(rows):
            line = (
                f"{delivery.id}\t{delivery.received_at:%Y-%m-%d %H:%M:%S}\t{domain}\t{delivery.provider}"
                f"\t{delivery.topic or '-'}\t{delivery.status}\t{delivery.attempts}"
            )
            if delivery.error:
                line += f"\t{delivery.error}"
            click.echo(line)


@webhooks_group.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--site", "site_ref", help="Only this site (public id or domain).")
@user_errors
def webhooks_replay(ids: tuple[int, ...], site_ref: str | None) -> None:
    """Process again the failed deliveries and those never processed (or only IDS, even if processed)."""
    config = load_config()
    engine = make_engine(config.database_url, config.waits)
    try:
        with Session(engine, expire_on_commit=False) as session:
            site_id = _site_id(session, site_ref)
            if ids:
                found = set(session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.id.in_(ids))))
                missing = [str(i) for i in ids if i not in found]
                if missing:
                    raise CommandError(f"No stored delivery with id {', '.join(missing)}.")
                todo = list(ids)
            else:
                todo = pending_ids(session, site_id=site_id)
            session.rollback()
            results: dict[str, int] = {}
            for delivery_id in todo:
                outcome = process(session, delivery_id, config.secret_key, force=bool(ids))
                results[outcome.status] = results.get(outcome.status, 0) + 1
                if outcome.error:
                    click.echo(f"delivery {delivery_id}: {outcome.error}", err=True)
    finally:
        engine.dispose()
    summary = ", ".join(f"{count} {name}" for name, count in sorted(results.items())) or "nothing to do"
    click.echo(f"Replayed {len(todo)} deliveries: {summary}.")
    failed = results.get(DeliveryStatus.FAILED)
    if failed:
        raise CommandError(f"{failed} deliveries still fail; see `tracker webhooks list --status failed`.")
