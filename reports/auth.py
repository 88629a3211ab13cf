"""Who may read reports: logged-in people (session cookie) or API clients (Bearer token)."""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from flask import g, jsonify, redirect, request, session, url_for
from sqlalchemy import select, update

from tracker.credentials import hash_token
from tracker.db import get_session, utcnow
from tracker.models import ApiToken, User


def current_user() -> User | None:
    """The logged-in user, from the signed session cookie."""
    if "user" not in g:
        user_id = session.get("user_id")
        g.user = get_session().get(User, user_id) if user_id else None
    return g.user


def bearer_token() -> ApiToken | None:
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


def api_auth_required(view):
    """JSON endpoints: a valid Bearer token or a logged-in user, else 401 with a JSON error."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if bearer_token() is None and current_user() is None:
            response = jsonify(error="Authentication required: send 'Authorization: Bearer <token>'.")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="tracker"'
            return response
        return view(*args, **kwargs)

    return wrapper


def login_required(view):
    """Pages: a logged-in user, else a redirect to /login?next=<this path>."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_user() is None:
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("pages.login") + "?" + urlencode({"next": target}))
        return view(*args, **kwargs)

    return wrapper
