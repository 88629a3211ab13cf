"""Login, logout, CSRF, redirects and throttling as a person at the login form meets them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.pages.conftest import EMAIL, PASSWORD, csrf_from, log_in
from tracker.app import create_app
from tracker.db import get_engine

PAGES = ["/", "/reports/roi", "/reports/roi.csv", "/reports/compare", "/sms/links", "/sms/hygiene", "/costs"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_login_with_next(client, path):
    response = client.get(path + "?site=x&from=2026-01-01")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [path + "?site=x&from=2026-01-01"]


def test_json_report_without_token_is_401(client):
    response = client.get("/api/reports/roi")
    assert response.status_code == 401
    assert "error" in response.get_json()


def test_login_then_pages_open(client, user):
    response = log_in(client, next_url="/reports/roi?model=linear")
    assert response.status_code == 302
    assert response.headers["Location"] == "/reports/roi?model=linear"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    page = client.get("/")
    assert page.status_code == 200
    assert EMAIL in page.get_data(as_text=True)


def test_login_cookie_is_secure_over_https(app, user):
    client = app.test_client()
    token = csrf_from(client.get("/login", base_url="https://reports.example").get_data(as_text=True))
    response = client.post(
        "/login", base_url="https://reports.example",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_email_is_matched_case_insensitively(client, user):
    assert log_in(client, email="  Marketer@Shop.Example ").status_code == 302


@pytest.mark.parametrize("email,password", [(EMAIL, "wrong password"), ("nobody@shop.example", PASSWORD)])
def test_wrong_credentials_are_refused(client, user, email, password):
    response = log_in(client, email=email, password=password)
    assert response.status_code == 401
    assert "do not match" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_without_csrf_token_is_refused(client, user):
    client.get("/login")
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_login_with_a_forged_csrf_token_is_refused(client, user):
    client.get("/login")
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400


def test_logout_needs_post_and_csrf(logged_in):
    assert logged_in.get("/logout").status_code == 405
    assert logged_in.post("/logout").status_code == 400
    assert logged_in.get("/").status_code == 200
    token = csrf_from(logged_in.get("/").get_data(as_text=True))
    response = logged_in.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert logged_in.get("/").status_code == 302


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
     "http:/evil.example", "/\t/evil.example", "evil.example", "///evil.example"],
)
def test_next_never_leaves_the_site(client, user, target):
    response = log_in(client, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_throttle_blocks_after_repeated_failures_even_with_the_right_password(client, user):
    for _ in range(5):
        assert log_in(client, password="wrong password").status_code == 401
    response = log_in(client)
    assert response.status_code == 429
    assert "Too many attempts, try again in 15 minutes" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_throttle_is_shared_by_every_process(app, config_env, user):
    first = app.test_client()
    for _ in range(5):
        log_in(first, password="wrong password")
    other_app = create_app(config_env)
    try:
        response = log_in(other_app.test_client())
        assert response.status_code == 429
        assert "Too many attempts" in response.get_data(as_text=True)
    finally:
        get_engine(other_app).dispose()


def test_throttle_per_address_covers_many_emails(client, user):
    for i in range(20):
        log_in(client, email=f"guess{i}@shop.example", password="wrong password")
    response = log_in(client)
    assert response.status_code == 429


def test_a_success_clears_earlier_failures(client, user):
    for _ in range(4):
        log_in(client, password="wrong password")
    assert log_in(client).status_code == 302
    token = csrf_from(client.get("/").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    for _ in range(4):
        assert log_in(client, password="wrong password").status_code == 401
    assert log_in(client).status_code == 302
