"""The raw delivery inbox: commit first, process after, replay what failed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tracker.db import begin_write, insert_for, utcnow
from tracker.limits import EXTERNAL_ID_LENGTH
from tracker.models import DeliveryStatus, Site, WebhookDelivery
from tracker.privacy import ERASED_BODY
from tracker.webhooks import generic, shopify, stripe, woocommerce
from tracker.webhooks.orders import apply
from tracker.webhooks.payload import InvalidOrder, MalformedPayload, parse_json
from tracker.webhooks.sealing import UnreadableBody, seal, unseal

log = logging.getLogger(__name__)

RECEIVERS: dict[str, ModuleType] = {
    "shopify": shopify,
    "woocommerce": woocommerce,
    "stripe": stripe,
    "orders": generic,
}
# Headers never kept in the inbox.
PRIVATE_HEADERS = {"cookie", "authorization", "proxy-authorization"}
# Processing is retried this many times in a row when the database reports a conflict (deadlock).
PROCESS_ATTEMPTS = 3
ERROR_LENGTH = 2000


@dataclass
class Outcome:
    delivery_id: int
    status: DeliveryStatus
    error: str | None = None
    invalid: bool = False  # the payload itself is unusable (the sender should hear 400)


class StoredHeaders(dict):
    """Headers as stored in the inbox (lower-cased names), read case-insensitively like the request's."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


def store(
    session: Session,
    site_id: int,
    provider: str,
    key: str | None,
    topic: str | None,
    headers,
    body: bytes,
    secret_key: str,
) -> tuple[int, str]:
    """Insert the delivery (body sealed) and commit; a repeat of a known delivery key returns the
    existing row."""
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in PRIVATE_HEADERS}
    key = key.strip()[:EXTERNAL_ID_LENGTH] if key and key.strip() else None
    begin_write(session)
    insert = insert_for(session)
    new_id = session.scalar(
        insert(WebhookDelivery)
        .values(
            site_id=site_id,
            provider=provider,
            delivery_key=key,
            topic=(topic or "")[:64] or None,
            headers=kept,
            body=seal(secret_key, body),
            received_at=utcnow(),
            status=DeliveryStatus.RECEIVED,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["site_id", "provider", "delivery_key"])
        .returning(WebhookDelivery.id)
    )
    if new_id is not None:
        session.commit()
        return new_id, DeliveryStatus.RECEIVED
    row = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.status).where(
            WebhookDelivery.site_id == site_id,
            WebhookDelivery.provider == provider,
            WebhookDelivery.delivery_key == key,
        )
    ).one()
    session.commit()
    return row.id, row.status


def process(session: Session, delivery_id: int, secret_key: str, force: bool = False,
            site_id: int | None = None) -> Outcome:
    """Apply one stored delivery in its own transaction; a failure is recorded on the row, never raised.

    A delivery already processed is left alone unless `force` (replaying it is harmless). Its site,
    when the caller knows it, saves looking it up (on Citus, a look at every shard).
    """
    for attempt in range(1, PROCESS_ATTEMPTS + 1):
        try:
            return _process_once(session, delivery_id, secret_key, force, site_id)
        except InvalidOrder as exc:
            session.rollback()
            return _record_failure(session, delivery_id, str(exc), invalid=True)
        except DBAPIError as exc:
            session.rollback()
            if attempt < PROCESS_ATTEMPTS and not exc.connection_invalidated:
                continue
            log.warning("webhook delivery %s failed: %s", delivery_id, exc)
            return _record_failure(session, delivery_id, _first_line(exc))
        except Exception as exc:  # a bug must not lose the delivery: it stays in the inbox as failed
            session.rollback()
            log.exception("webhook delivery %s failed", delivery_id)
            return _record_failure(session, delivery_id, f"{type(exc).__name__}: {exc}")
    raise AssertionError("unreachable")


def _process_once(session: Session, delivery_id: int, secret_key: str, force: bool,
                  site_id: int | None) -> Outcome:
    begin_write(session)
    # Its site first: the row is then locked where it lives (on Citus, one site's shard).
    if site_id is None:
        site_id = session.scalar(select(WebhookDelivery.site_id).where(WebhookDelivery.id == delivery_id))
    delivery = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.site_id == site_id, WebhookDelivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    done = delivery.status in (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED) and not force
    if done or delivery.status == DeliveryStatus.ERASED:  # an erased body has nothing left to replay
        session.commit()
        return Outcome(delivery_id, delivery.status)
    site = session.get(Site, delivery.site_id)
    receiver = RECEIVERS[delivery.provider]
    try:
        payload = parse_json(unseal(secret_key, delivery.body))
    except (MalformedPayload, UnreadableBody) as exc:
        raise InvalidOrder(str(exc)) from None
    changes = receiver.parse(delivery.topic, payload, StoredHeaders(delivery.headers or {}), site)
    if changes is None:
        status = DeliveryStatus.IGNORED
    else:
        complete = apply(session, site, delivery.provider, changes, secret_key)
        status = DeliveryStatus.PROCESSED if complete else DeliveryStatus.WAITING
        if changes.refunds:
            delivery.order_external_id = changes.refunds[0].order_external_id
        elif changes.orders:
            delivery.order_external_id = changes.orders[0].external_id
        if changes.forget is not None or changes.erase_site:
            # The request itself names the person: done, its body goes too (its id stays, for retries).
            delivery.body, delivery.headers, status = ERASED_BODY, {}, DeliveryStatus.ERASED
    delivery.status = status
    delivery.error = None
    delivery.attempts = (delivery.attempts or 0) + 1
    delivery.processed_at = utcnow()
    session.commit()
    return Outcome(delivery_id, status)


def _record_failure(session: Session, delivery_id: int, error: str, invalid: bool = False) -> Outcome:
    try:
        begin_write(session)
        delivery = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                                   .execution_options(populate_existing=True)).one()
        delivery.status = DeliveryStatus.FAILED
        delivery.error = error[:ERROR_LENGTH]
        delivery.attempts = (delivery.attempts or 0) + 1
        delivery.processed_at = utcnow()
        session.commit()
    except DBAPIError:  # the database went away: the row stays `received` and replay finds it
        session.rollback()
        log.warning("could not record the failure of webhook delivery %s", delivery_id)
    return Outcome(delivery_id, DeliveryStatus.FAILED, error, invalid)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pending_ids(
    session: Session,
    statuses=(DeliveryStatus.FAILED, DeliveryStatus.RECEIVED),
    site_id: int | None = None,
) -> list[int]:
    """Deliveries an operator's replay should retry, oldest first."""
    query = select(WebhookDelivery.id).where(WebhookDelivery.status.in_(statuses))
    if site_id is not None:
        query = query.where(WebhookDelivery.site_id == site_id)
    return list(session.scalars(query.order_by(WebhookDelivery.received_at, WebhookDelivery.id)))
