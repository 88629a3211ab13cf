"""Who may read reports: logged-in people (session cookie) or API clients (tracker.auth's tokens)."""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from flask import g, jsonify, redirect, request, session, url_for

from tracker.access import of_user, set_caller
from tracker.auth import AUTH_REQUIRED, BEARER_REALM, bearer_token
from tracker.db import get_session
from tracker.models import User

# The session cookie's copy of the user's session_epoch.
SESSION_EPOCH = "epoch"


def current_user() -> User | None:
    """The logged-in user, from the signed session cookie; from then on the request sees only
    their sites (tracker.access). A cookie issued before the user's password changed or a site
    was taken from them (an older `session_epoch`), or of a removed user, is logged out."""
    if "user" not in g:
        user_id = session.get("user_id")
        db = get_session()
        user = db.get(User, user_id) if user_id else None
        if user is not None and session.get(SESSION_EPOCH, 0) != user.session_epoch:
            user = None
        if user is None and user_id:
            session.clear()
        if user is not None:
            set_caller(of_user(db, user))
        g.user = user
    return g.user


def start_session(user: User) -> None:
    """Log `user` in on this browser (the caller of `/login`)."""
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session[SESSION_EPOCH] = user.session_epoch
    g.pop("user", None)


def api_auth_required(view):
    """JSON endpoints: a valid Bearer token or a logged-in user, else 401 with a JSON error."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if bearer_token() is None and current_user() is None:
            response = jsonify(error=AUTH_REQUIRED)
            response.status_code = 401
            response.headers["WWW-Authenticate"] = BEARER_REALM
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
