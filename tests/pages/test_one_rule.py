"""Rules that once had two answers have one, end to end: what the collector records, the order
webhook matches, the report counts and the SMS hygiene view says agree."""

from __future__ import annotations

import json
from urllib.parse import quote

from tracker.days import site_today

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1")


def page_view(client, site, visitor: str, url: str) -> None:
    body = {"site": site.public_id, "url": url, "visitor": visitor, "event": "pageview"}
    response = client.post("/collect", data=json.dumps(body),
                           headers={"User-Agent": IPHONE, "Content-Type": "text/plain;charset=UTF-8"})
    assert response.status_code == 202


def test_a_txt_campaign_is_sms_in_the_report_and_in_the_hygiene_view(logged_in, site):
    page_view(logged_in, site, "ann", "https://shop.example/?utm_source=attentive&utm_medium=txt"
              f"&utm_campaign={quote('Fall  Drop')}")
    page_view(logged_in, site, "bob", "https://shop.example/?utm_source=attentive&utm_medium=sms"
              "&utm_campaign=fall+drop")
    today = site_today(site).isoformat()
    report = logged_in.get(f"/api/reports/roi?site={site.public_id}&from={today}&to={today}"
                           "&by=channel,campaign").get_json()
    rows = {(r["channel"], r["campaign"]): r["sessions"] for r in report["rows"]}
    assert rows == {("SMS", "fall drop"): 2}  # one channel, one campaign, whatever the spelling

    hygiene = logged_in.get(f"/sms/hygiene?site={site.public_id}").get_data(as_text=True)
    # Both media mean a text message: the view offers to merge them; the campaign is one already.
    assert "<code>txt</code> (1)" in hygiene and "<code>sms</code> (1)" in hygiene
    assert "fall drop" not in hygiene
