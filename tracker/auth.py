"""Who is calling: the API token of a request (`Authorization: Bearer <token>`), for the
ingestion APIs and the reports alike. The report pages' logins build on this in reports.auth."""

from __future__ import annotations

from datetime import timedelta

from flask import request
from sqlalchemy import select, update

from tracker.access import of_token, set_caller
from tracker.credentials import hash_token
from tracker.db import begin_write, get_session, utcnow
from tracker.models import ApiToken

BEARER_REALM = 'Bearer realm="tracker"'
# A token's last use is recorded to this precision (one write a minute, not one per request).
LAST_USED_STEP = timedelta(minutes=1)
AUTH_REQUIRED = "Authentication required: send 'Authorization: Bearer <token>'."


def bearer_token() -> ApiToken | None:
    """The request's API token, if it names a stored one (its last use is recorded). From then on
    the request sees only the token's sites (tracker.access)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    db = get_session()
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip())))
    access = of_token(db, row) if row is not None else None
    # End the read first: on SQLite a read cannot turn into a write once another writer committed.
    db.commit()
    now = utcnow()
    if row is None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_STEP:
        begin_write(db)
        db.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        db.commit()
    set_caller(access)
    return row
