"""The snippet in a real Chromium: an SMS click on a store's page becomes sessions and page views."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import and_, func, select

from tracker.identity import identity_hash
from tracker.models import Identity, Pageview, TrackedSession, Visitor

SMS_LANDING = (
    "/products/hoodie?utm_source=Attentive&utm_medium=SMS&utm_campaign=Black+Friday"
    "&utm_content=20%25off&utm_term=VIP"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture
def collector(served_app) -> str:
    """The collector as `tracker serve` runs it: gunicorn with the collector's own worker, whose
    event loop answers the browser's page views."""
    return served_app


def visitor_row(key: str):
    return lambda db: db.scalar(select(Visitor).where(Visitor.visitor_key == key))


def pageview_paths(key: str):
    """The paths (with query) of a visitor's stored page views, oldest first."""

    def read(db):
        urls = db.scalars(
            select(Pageview.url)
            .join(Visitor, and_(Visitor.site_id == Pageview.site_id, Visitor.id == Pageview.visitor_id))
            .where(Visitor.visitor_key == key)
            .order_by(Pageview.ts, Pageview.id)
        )
        return [urlsplit(url)._replace(scheme="", netloc="").geturl() for url in urls]

    return read


def sessions_of(key: str):
    return lambda db: list(
        db.scalars(
            select(TrackedSession)
            .join(Visitor, and_(Visitor.site_id == TrackedSession.site_id,
                                Visitor.id == TrackedSession.visitor_id))
            .where(Visitor.visitor_key == key)
        )
    )


def count(model):
    return lambda db: db.scalar(select(func.count()).select_from(model))


def collect_requests(page) -> list[str]:
    """Records every request the page makes to the collector's /collect."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if urlsplit(r.url).path == "/collect" else None)
    return seen


def test_an_sms_click_and_its_browsing_make_one_session_with_the_campaign(
    store, make_context, query, wait_for, output_dir
):
    page = make_context().new_page()
    page.goto(store.page_url(SMS_LANDING))
    key = page.evaluate("tracker.visitor()")
    assert key
    assert wait_for(lambda: query(pageview_paths(key))) == [SMS_LANDING]
    page.screenshot(path=str(output_dir / "snippet-sms-landing.png"))

    # A single-page-app navigation, pushed twice: one page view, not two.
    page.evaluate("history.pushState({}, '', '/products/hoodie/sizes')")
    page.evaluate("history.pushState({}, '', '/products/hoodie/sizes')")
    # Then an ordinary link to a second page.
    page.click("#next")
    page.wait_for_url("**/collections/all")

    expected = [SMS_LANDING, "/products/hoodie/sizes", "/collections/all"]
    paths = wait_for(lambda: len(query(pageview_paths(key))) >= 3 and query(pageview_paths(key)))
    assert sorted(paths) == sorted(expected)

    sessions = query(sessions_of(key))
    assert len(sessions) == 1
    visit = sessions[0]
    assert (visit.utm_source, visit.utm_medium, visit.utm_campaign, visit.utm_content, visit.utm_term) == (
        "attentive",
        "sms",
        "black friday",
        "20%off",
        "vip",
    )
    assert visit.channel == "SMS"
    stored = query(lambda db: list(db.scalars(select(Pageview.session_id).join(Visitor, and_(
        Visitor.site_id == Pageview.site_id, Visitor.id == Pageview.visitor_id)).where(
        Visitor.visitor_key == key))))
    assert stored == [visit.id] * 3


def test_browser_back_counts_the_page_returned_to(store, make_context, query, wait_for):
    page = make_context().new_page()
    page.goto(store.page_url("/"))
    key = page.evaluate("tracker.visitor()")
    page.evaluate("history.pushState({}, '', '/cart')")
    page.go_back()
    page.wait_for_url(store.page_url("/"))
    paths = wait_for(lambda: len(query(pageview_paths(key))) >= 3 and query(pageview_paths(key)))
    assert sorted(paths) == ["/", "/", "/cart"]


def test_identify_links_the_visitor_to_a_person_by_a_keyed_hash(store, make_context, query, wait_for, app):
    page = make_context().new_page()
    page.goto(store.page_url(SMS_LANDING))
    key = page.evaluate("tracker.visitor()")
    page.evaluate("tracker.identify(' A@B.example ')")

    visitor = wait_for(lambda: (v := query(visitor_row(key))) and v.person_id and v)
    assert visitor, "identify() did not link the visitor to a person"
    identities = query(lambda db: list(db.scalars(select(Identity))))
    secret = app.config["TRACKER"].secret_key
    assert [(i.kind, i.value_hash, i.person_id) for i in identities] == [
        ("email", identity_hash(secret, "email", "a@b.example"), visitor.person_id)
    ]
    assert "a@b.example" not in identities[0].value_hash


@pytest.mark.parametrize("user_agent", [GOOGLEBOT, HEADLESS_CHROME], ids=["googlebot", "headless-chrome"])
def test_a_robot_is_answered_but_nothing_is_stored(store, make_context, query, user_agent):
    page = make_context(user_agent=user_agent).new_page()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/collect") as answer:
        page.goto(store.page_url(SMS_LANDING))
    assert answer.value.status == 202
    # 202 means stored if it was ever going to be.
    assert query(count(Visitor)) == 0
    assert query(count(TrackedSession)) == 0
    assert query(count(Pageview)) == 0


def test_the_visitor_id_survives_a_reload_and_differs_between_browsers(
    store, make_context, query, wait_for
):
    page = make_context().new_page()
    page.goto(store.page_url("/"))
    key = page.evaluate("tracker.visitor()")
    page.reload()
    assert page.evaluate("tracker.visitor()") == key
    assert wait_for(lambda: len(query(pageview_paths(key))) >= 2 and query(pageview_paths(key))) == ["/", "/"]
    assert len(query(sessions_of(key))) == 1
    assert query(count(Visitor)) == 1

    other = make_context().new_page()
    other.goto(store.page_url("/"))
    assert other.evaluate("tracker.visitor()") not in ("", key)


def test_the_visitor_id_falls_back_to_a_cookie_when_storage_is_blocked(store, make_context, wait_for, query):
    context = make_context()
    context.add_init_script(
        "Object.defineProperty(window, 'localStorage', {get() { throw new DOMException('blocked'); }});"
    )
    page = context.new_page()
    page.goto(store.page_url("/"))
    key = page.evaluate("tracker.visitor()")
    assert key and f"_tracker_vid={key}" in page.evaluate("document.cookie")
    page.reload()
    assert page.evaluate("tracker.visitor()") == key
    assert wait_for(lambda: len(query(pageview_paths(key))) >= 2)


def test_a_shopify_storefront_gets_the_visitor_id_on_its_cart_once(store, make_context, query, wait_for):
    page = make_context().new_page()
    page.goto(store.page_url("/?shopify=1"))
    key = page.evaluate("tracker.visitor()")
    assert wait_for(lambda: store.cart_updates) == [{"attributes": {"_tracker_vid": key}}]

    page.click("#next")
    page.wait_for_url("**/collections/all")
    assert page.evaluate("Boolean(window.Shopify)")
    assert wait_for(lambda: len(query(pageview_paths(key))) >= 2)
    page.wait_for_load_state("networkidle")
    assert store.cart_updates == [{"attributes": {"_tracker_vid": key}}]


def test_a_site_that_honours_privacy_signals_sends_nothing_for_gpc(store, make_context, query):
    context = make_context()
    context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
    )
    page = context.new_page()
    requests = collect_requests(page)
    page.goto(store.page_url("/?dnt=1"), wait_until="networkidle")
    assert page.evaluate("typeof tracker.identify") == "function"
    assert page.evaluate("tracker.visitor()") == ""
    page.evaluate("tracker.identify('a@b.example'); tracker.pageview()")
    page.wait_for_load_state("networkidle")
    assert requests == []
    assert page.evaluate("localStorage.length") == 0

    # The same browser on a site that did not opt in is counted.
    with page.expect_request(lambda r: urlsplit(r.url).path == "/collect"):
        page.goto(store.page_url("/"))


def test_browser_automation_is_not_counted(store, make_context):
    context = make_context()
    context.add_init_script("Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => true});")
    page = context.new_page()
    requests = collect_requests(page)
    page.goto(store.page_url(SMS_LANDING), wait_until="networkidle")
    page.evaluate("history.pushState({}, '', '/cart')")
    page.wait_for_load_state("networkidle")
    assert requests == []


def test_going_back_to_a_page_counts_it_again(store, make_context, query, wait_for):
    page = make_context().new_page()
    page.goto(store.page_url("/products/hoodie"))
    key = page.evaluate("tracker.visitor()")
    page.click("#next")
    page.wait_for_url("**/collections/all")
    page.go_back()
    page.wait_for_url("**/products/hoodie")
    # Headless Chromium reloads the page; a phone restores it from the back/forward cache,
    # where no script runs again and only a `pageshow` event says the page is back.
    page.evaluate("dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    paths = wait_for(lambda: len(query(pageview_paths(key))) >= 4 and query(pageview_paths(key)))
    assert sorted(paths) == ["/collections/all"] + ["/products/hoodie"] * 3


def test_a_prerendered_page_is_counted_only_once_it_is_shown(store, make_context, query, wait_for):
    context = make_context()
    # What Chromium shows a page prerendered from speculation rules, until the person opens it.
    context.add_init_script(
        "window.prerendered = true;"
        "Object.defineProperty(Document.prototype, 'prerendering', {get: () => window.prerendered});"
    )
    page = context.new_page()
    requests = collect_requests(page)
    page.goto(store.page_url(SMS_LANDING), wait_until="networkidle")
    assert requests == []

    page.evaluate("prerendered = false; document.dispatchEvent(new Event('prerenderingchange'))")
    key = page.evaluate("tracker.visitor()")
    assert wait_for(lambda: query(pageview_paths(key))) == [SMS_LANDING]
    assert len(requests) == 1


def test_a_page_with_the_tag_twice_is_counted_once(store, make_context, query, wait_for):
    page = make_context().new_page()
    requests = collect_requests(page)
    page.goto(store.page_url("/?twice=1"), wait_until="networkidle")
    page.evaluate("history.pushState({}, '', '/cart')")
    key = page.evaluate("tracker.visitor()")
    paths = wait_for(lambda: len(query(pageview_paths(key))) >= 2 and query(pageview_paths(key)))
    page.wait_for_load_state("networkidle")
    assert sorted(paths) == ["/?twice=1", "/cart"]
    assert len(requests) == 2


def _stored_id(page) -> tuple[str | None, str]:
    return page.evaluate("localStorage.getItem('_tracker_vid')"), page.evaluate("document.cookie")


def test_with_consent_required_nothing_is_stored_or_sent_until_it_is_given(
    store, make_context, query, wait_for
):
    page = make_context().new_page()
    sent = collect_requests(page)
    page.goto(store.page_url("/?consent=1&utm_source=postscript&utm_medium=sms"), wait_until="networkidle")
    page.evaluate("history.pushState({}, '', '/elsewhere?consent=1')")
    page.evaluate("tracker.identify('ann@example.com')")
    page.wait_for_timeout(300)
    assert sent == [] and _stored_id(page) == (None, "") and page.evaluate("tracker.visitor()") == ""

    # The banner's "accept": this page counts once, the id is kept, and later pages count at once.
    page.evaluate("tracker.consent(true); tracker.consent(true)")
    key = page.evaluate("tracker.visitor()")
    assert key and _stored_id(page)[0] == key
    assert wait_for(lambda: query(pageview_paths(key))) == ["/elsewhere?consent=1"]
    page.goto(store.page_url("/next?consent=1"), wait_until="networkidle")
    assert page.evaluate("tracker.visitor()") == key  # remembered without asking the banner again
    assert wait_for(lambda: len(query(pageview_paths(key))) == 2)

    # "Withdraw": the id is forgotten and nothing more is sent.
    page.evaluate("tracker.consent(false)")
    assert _stored_id(page) == (None, "") and page.evaluate("tracker.visitor()") == ""
    before = len(sent)
    page.evaluate("history.pushState({}, '', '/after-withdrawal?consent=1')")
    page.wait_for_timeout(300)
    assert len(sent) == before and len(query(pageview_paths(key))) == 2


GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"


def test_global_privacy_control_counts_the_page_anonymously(store, make_context, query, wait_for):
    context = make_context()
    context.add_init_script(GPC)
    page = context.new_page()
    sent = collect_requests(page)
    page.goto(store.page_url("/?shopify=1&utm_source=attentive&utm_medium=sms&utm_campaign=gpc"),
              wait_until="networkidle")
    page.evaluate("tracker.identify('ann@example.com')")
    page.wait_for_timeout(300)
    assert page.evaluate("tracker.visitor()") == ""
    assert _stored_id(page) == (None, "shopify=1")  # the store's own cookie only
    assert page.evaluate("sessionStorage.length") == 0
    assert len(sent) == 1 and store.cart_updates == []  # the page view; no identify, no cart attribute
    visitors = wait_for(lambda: query(lambda db: list(db.scalars(select(Visitor.visitor_key)))))
    assert len(visitors) == 1 and visitors[0].startswith("anon-")
    visit = wait_for(lambda: query(sessions_of(visitors[0])))
    assert visit[0].utm_campaign == "gpc"
    assert query(count(Identity)) == 0
