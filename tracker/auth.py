"""Who is calling: the API token of a request (`Authorization: Bearer <token>`), for the
ingestion APIs and the reports alike. The report pages' logins build on this in reports.auth."""

from __future__ import annotations

from flask import request
from sqlalchemy import select, update

from tracker.credentials import hash_token
from tracker.db import get_session, utcnow
from tracker.models import ApiToken

BEARER_REALM = 'Bearer realm="tracker"'
AUTH_REQUIRED = "Authentication required: send 'Authorization: Bearer <token>'."


def bearer_token() -> ApiToken | None:
    """The request's API token, if it names a stored one (its last use is recorded)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    db = get_session()
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip())))
    if row is not None:
        db.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=utcnow()))
        db.commit()
    return row
