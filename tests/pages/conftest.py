"""Fixtures for the report pages: a user, a logged-in client, and a way to read CSRF tokens."""

from __future__ import annotations

import re

import pytest

from tracker.credentials import hash_password
from tracker.models import Role, User

PASSWORD = "correct horse battery"
EMAIL = "marketer@shop.example"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@pytest.fixture
def user(session):
    row = User(email=EMAIL, password_hash=hash_password(PASSWORD), role=Role.ADMIN)
    session.add(row)
    session.commit()
    return row


def log_in(client, email: str = EMAIL, password: str = PASSWORD, next_url: str | None = None):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    data = {"email": email, "password": password, "csrf_token": token}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data)


@pytest.fixture
def logged_in(client, user):
    response = log_in(client)
    assert response.status_code == 302
    return client
