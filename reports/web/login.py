"""Logging in and out: CSRF-checked forms, throttled attempts, redirects only within the site."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select, update

from reports.auth import current_user, start_session
from reports.web import bp
from reports.web.security import check_csrf, csrf_token, rotate_csrf_token, safe_next
from reports.web.throttle import Throttle
from tracker.audit import audit, ip_key
from tracker.credentials import check_password, hash_password
from tracker.db import begin_write, get_session, utcnow
from tracker.models import User

EMAIL_LIMIT = 254
PASSWORD_LIMIT = 1024
# Compared against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password("not-a-real-password")
    return _DUMMY_HASH


@bp.before_request
def _protect_forms():
    check_csrf()


@bp.after_request
def _no_store(response):
    if request.endpoint != "pages.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.context_processor
def _template_globals():
    return {"csrf_token": csrf_token, "user": current_user()}


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user() is not None:
            return redirect(target)
        return render_template("login.html", next=target, email="", error=None)

    email = request.form.get("email", "").strip().lower()[:EMAIL_LIMIT]
    password = request.form.get("password", "")[:PASSWORD_LIMIT]
    if not email or not password:
        return _refuse("Enter your email and password.", email, target, 400)
    db = get_session()
    begin_write(db)
    throttle = Throttle.for_login(current_app.config["SECRET_KEY"], email, request.remote_addr)
    now = utcnow()
    minutes = throttle.blocked_minutes(db, now)
    if minutes:
        unit = "minute" if minutes == 1 else "minutes"
        return _refuse(f"Too many attempts, try again in {minutes} {unit}.", email, target, 429)

    user = db.scalar(select(User).where(User.email == email))
    valid = check_password(user.password_hash if user else _dummy_hash(), password)
    if user is None or not valid:
        throttle.record_failure(db, now)
        db.commit()
        # What was typed as an email is logged only when it is a user's (it may be a password).
        audit("login failed", user=user.email if user else "(unknown)", ip=_ip_key())
        return _refuse("That email and password do not match.", email, target, 401)

    throttle.record_success(db)
    db.execute(update(User).where(User.id == user.id).values(last_login_at=now))
    db.commit()
    start_session(user)
    rotate_csrf_token()
    audit("login", user=user.email, ip=_ip_key())
    return redirect(target)


def _ip_key() -> str:
    return ip_key(request.remote_addr, current_app.config["SECRET_KEY"])


def _refuse(message: str, email: str, target: str, status: int):
    return render_template("login.html", next=target, email=email, error=message), status


@bp.post("/logout")
def logout():
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("pages.login"))
