"""The morning email's HTML as mail apps show it: rendered in Chromium at 600 px (desktop clients)
and 390 px (a phone), with screenshots in test-output/."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from reports import digest
from tests.webhooks.conftest import ORDERS_SECRET, standard_headers
from tracker.days import site_today
from tracker.sites import add_secret, create_site


def test_the_email_reads_well_at_desktop_and_phone_widths(browser, session, client, output_dir):
    site = create_site(session, "shop.example", timezone="America/New_York", currency="USD")
    add_secret(session, site, "orders", ORDERS_SECRET)
    session.commit()
    yesterday = site_today(site) - timedelta(days=1)
    campaigns = (("welcome-series-with-a-very-long-name-that-must-wrap", "310.00"),
                 ("<b>vip</b> early access", "95.50"), ("abandoned cart", "42.00"))
    for n, (campaign, total) in enumerate(campaigns):
        created = datetime.combine(yesterday, time(9 + n), tzinfo=ZoneInfo("America/New_York"))
        body = json.dumps({"id": f"E-{n}", "created_at": created.isoformat(), "total": total,
                           "currency": "USD", "status": "paid",
                           "landing_url": "https://shop.example/?utm_source=postscript"
                           f"&utm_medium=sms&utm_campaign={campaign}"}).encode()
        assert client.post(f"/webhooks/orders/{site.public_id}", data=body,
                           headers=standard_headers(body)).status_code == 200
    built = digest.build(session, site, yesterday, "https://reports.example")
    mail = digest.message(built, "reports@tracker.example", "owner@shop.example")
    html = mail.get_body(("html",)).get_content()
    for width in (600, 390):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.set_content(html)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        assert page.locator("script").count() == 0 and page.locator("img").count() == 0
        assert "<b>vip</b> early access" in page.inner_text("body")  # shown as text
        page.screenshot(path=str(output_dir / f"digest-email-{width}px.png"), full_page=True)
        page.close()
