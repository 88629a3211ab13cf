"""`POST /webhooks/<provider>/<site>`: verify the raw bytes, commit to the inbox, then process."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from tracker.db import get_session
from tracker.models import SETTLED_DELIVERIES, DeliveryStatus
from tracker.sites import find_site, secrets_for
from tracker.webhooks import woocommerce
from tracker.webhooks.inbox import RECEIVERS, process, store
from tracker.webhooks.payload import MalformedPayload, parse_json
from tracker.webhooks.signatures import BadSignature

# Largest delivery accepted; Shopify's and WooCommerce's biggest orders are a few hundred KiB.
MAX_WEBHOOK_BYTES = 1024 * 1024

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _error(status: int, message: str):
    response = jsonify(error=message)
    response.status_code = status
    return response


def _unavailable(exc: Exception):
    log.warning("webhook refused, database unavailable: %s", exc)
    return _error(503, "The database is unavailable; the delivery was not stored, please retry.")


@bp.post("/webhooks/<provider>/<site_ref>")
def receive(provider: str, site_ref: str):
    receiver = RECEIVERS.get(provider)
    if receiver is None:
        return _error(404, f"Unknown provider {provider[:40]!r}; use shopify, woocommerce, stripe or orders.")
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        return _error(413, "The request body is too large.")
    # The raw bytes, before anything parses them: signatures are over these exact bytes.
    body = request.get_data(cache=True)
    if len(body) > MAX_WEBHOOK_BYTES:
        return _error(413, "The request body is too large.")

    session = get_session()
    try:
        site = find_site(session, site_ref)
        secrets = secrets_for(session, site.id, provider) if site is not None else []
        session.commit()  # ends the read without expiring `site` (a rollback would)
    except SQLAlchemyError as exc:
        session.rollback()
        return _unavailable(exc)
    if site is None:
        return _error(404, "Unknown site; check the site id in the webhook URL.")
    if provider == "woocommerce" and woocommerce.is_ping(body):
        return jsonify(status="ok")
    if not secrets:
        return _error(401, f"No {provider} secret is stored for this site; run `tracker sites secret`.")
    try:
        receiver.verify(body, request.headers, secrets)
    except BadSignature as exc:
        return _error(401, str(exc))
    try:
        payload = parse_json(body)
    except MalformedPayload as exc:
        return _error(400, str(exc))

    topic, key = receiver.describe(request.headers, payload)
    try:
        delivery_id, status = store(
            session, site.id, provider, key, topic, request.headers, body,
            current_app.config["TRACKER"].secret_key,
        )
    except SQLAlchemyError as exc:
        session.rollback()
        return _unavailable(exc)
    if status in SETTLED_DELIVERIES:
        return jsonify(status="duplicate", delivery=delivery_id)

    # Stored and committed: from here on the store gets a 2xx whatever happens to processing.
    try:
        outcome = process(session, delivery_id, current_app.config["TRACKER"].secret_key, site_id=site.id)
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("webhook delivery %s stored, processing deferred: %s", delivery_id, exc)
        return jsonify(status=DeliveryStatus.RECEIVED, delivery=delivery_id)
    if outcome.invalid and provider == "orders":
        # Our own format: the integrator hears what is wrong. Stores get their 2xx (they disable
        # endpoints that keep failing) and the delivery waits in the inbox for `webhooks replay`.
        return _error(400, f"{outcome.error} The delivery is kept in the inbox as failed.")
    body = {"status": outcome.status, "delivery": delivery_id}
    if outcome.error:
        body["error"] = outcome.error
    return jsonify(body)
