"""A real Chromium, the real app on a local port, and a store's pages on another origin.

The store's pages live at http://shop.example:PORT (Chromium resolves shop.example to
127.0.0.1), the collector at http://127.0.0.1:PORT: cross-origin, as in production.
"""

from __future__ import annotations

import html
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, request
from sqlalchemy import select
from werkzeug.serving import make_server

from tracker.cli import main
from tracker.credentials import hash_password
from tracker.db import utcnow
from tracker.models import Order, Role, Site, TrackedSession, User, Visitor

CHROMIUM = os.environ.get("TRACKER_CHROMIUM", "/usr/bin/chromium")
STORE_HOST = "shop.example"
# A phone's Chrome, the way an SMS click arrives (headless Chromium would say HeadlessChrome).
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
POLL_SECONDS = 10.0


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                # Leaves navigator.webdriver false, so the snippet runs as for a person.
                "--disable-blink-features=AutomationControlled",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--host-resolver-rules=MAP {STORE_HOST} 127.0.0.1",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def make_context(browser) -> Iterator[Callable[..., Any]]:
    """New browser profiles (fresh storage), a phone's user agent unless told otherwise."""
    contexts = []

    def make(user_agent: str = PHONE_UA, **options):
        context = browser.new_context(user_agent=user_agent, **options)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


class ServedApp:
    """A WSGI app on 127.0.0.1 and a random port, in a background thread."""

    def __init__(self, wsgi_app) -> None:
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()


@pytest.fixture
def collector(app) -> Iterator[str]:
    """The real app (collector and /t.js) on the test database; yields its base URL."""
    served = ServedApp(app)
    yield f"http://127.0.0.1:{served.port}"
    served.close()


@dataclass
class Store:
    """A storefront with the snippet on every page; records Shopify cart updates."""

    url: str
    cart_updates: list[dict[str, Any]] = field(default_factory=list)

    def page_url(self, path: str) -> str:
        return self.url + path


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
{shopify}{tag}
</head><body><h1>{title}</h1>
<a id="next" href="/collections/all">All products</a>
</body></html>"""


@pytest.fixture
def store(collector, site) -> Iterator[Store]:
    """Pages at http://shop.example:PORT/...; `?shopify=1` makes it a Shopify storefront,
    `?dnt=1` adds data-respect-dnt to the tag, `?consent=1` data-consent="required", and
    `?twice=1` includes the tag twice."""
    shop = Flask("store")
    served_store = Store(url="")

    @shop.get("/", defaults={"path": ""})
    @shop.get("/<path:path>")
    def page(path: str):
        shopify = request.args.get("shopify") or request.cookies.get("shopify")
        extra = " data-respect-dnt" if request.args.get("dnt") else ""
        extra += ' data-consent="required"' if request.args.get("consent") else ""
        tag = f'<script defer src="{collector}/t.js" data-site="{site.public_id}"{extra}></script>'
        body = PAGE.format(
            title=html.escape(f"Store /{path}"),
            # A theme and an app embed that both add the tag.
            tag=tag * 2 if request.args.get("twice") else tag,
            shopify='<script>window.Shopify = {shop: "shop.myshopify.com"};</script>\n' if shopify else "",
        )
        response = shop.response_class(body, mimetype="text/html")
        if shopify:
            response.set_cookie("shopify", "1")
        return response

    @shop.post("/cart/update.js")
    def cart_update():
        # What Shopify's cart reads: a JSON body, or a form's `attributes[name]` fields.
        if request.is_json:
            update = request.get_json()
        else:
            fields = request.form.items()
            update = {"attributes": {name[len("attributes["):-1]: value for name, value in fields
                                     if name.startswith("attributes[") and name.endswith("]")}}
        served_store.cart_updates.append(update)
        return {"attributes": update.get("attributes", {})}

    served = ServedApp(shop)
    served_store.url = f"http://{STORE_HOST}:{served.port}"
    yield served_store
    served.close()


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """Polls a check until it returns something truthy (beacons are asynchronous)."""

    def poll(check: Callable[[], Any], timeout: float = POLL_SECONDS) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.1)

    return poll


@pytest.fixture
def query(app) -> Callable[..., Any]:
    """Runs `read(db)` in a fresh database session, so every call sees the latest commits."""
    from tracker.db import session_factory

    factory = session_factory(app)

    def run(read: Callable[[Any], Any]) -> Any:
        with factory() as db:
            return read(db)

    return run


# --- a marketer's data and a logged-in desktop page (the report pages' tests) -------------------

DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
EMAIL = "coffee@shop.example"
PASSWORD = "morning coffee first"
HOSTILE_SOURCE = "<script>alert(1)</script>"
HOSTILE_CAMPAIGN = '"><img src=x onerror=alert(1)>'
FORMULA_CONTENT = "=hyperlink(\"http://evil.example\",\"click\")"


@pytest.fixture
def demo_data(runner, session):
    """`tracker demo` data, a user, and one paid order from a visit with hostile UTM values."""
    args = ["demo", "--days", "10", "--sessions", "3000", "--orders", "200", "--seed", "7"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    session.add(User(email=EMAIL, password_hash=hash_password(PASSWORD), role=Role.ADMIN))
    site = session.scalar(select(Site).where(Site.domain == "demo.example"))
    at = utcnow() - timedelta(hours=36)
    visitor = Visitor(site_id=site.id, visitor_key="hostile-visitor", first_seen_at=at, last_seen_at=at)
    session.add(visitor)
    session.flush()
    session.add(TrackedSession(
        site_id=site.id, visitor_id=visitor.id, started_at=at, last_seen_at=at, pageviews=1,
        utm_source=HOSTILE_SOURCE, utm_medium="sms", utm_campaign=HOSTILE_CAMPAIGN,
        utm_content=FORMULA_CONTENT, utm_term="(not set)", channel="SMS",
    ))
    session.add(Order(
        site_id=site.id, provider="orders", external_id="hostile-1", created_at=at + timedelta(minutes=5),
        paid_at=at + timedelta(minutes=5), status="paid", is_test=False, currency=site.currency,
        total_minor=4321, visitor_id=visitor.id, match_method="visitor",
    ))
    session.commit()
    return site


@pytest.fixture
def marketer(make_context, collector, demo_data):
    """A logged-in desktop page; any JavaScript dialog fails the test."""
    context = make_context(
        user_agent=DESKTOP_UA, viewport={"width": 1366, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(collector + "/")
    assert urlsplit(page.url).path == "/login"
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(collector + "/")
    yield page
    assert dialogs == [], f"a script from the data ran: {dialogs}"
