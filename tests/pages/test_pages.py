"""The pages with data in them: escaping, CSV, headers, empty states, costs and SMS links."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.pages.conftest import csrf_from
from tracker.db import utcnow
from tracker.models import Cost, Order, TrackedSession, Visitor
from tracker.sites import create_site

HOSTILE_SOURCE = "<script>alert(1)</script>"
HOSTILE_CAMPAIGN = '"><img src=x onerror=alert(1)>'
FORMULA = '=hyperlink("http://evil.example","x")'


def add_sale(session, site, source, medium, campaign, content="(not set)", total_minor=5000, key="v1",
             channel="SMS"):
    """One visit with these UTMs and a paid order from it, 36 hours ago."""
    at = utcnow() - timedelta(hours=36)
    visitor = Visitor(site_id=site.id, visitor_key=key, first_seen_at=at, last_seen_at=at)
    session.add(visitor)
    session.flush()
    session.add(TrackedSession(
        site_id=site.id, visitor_id=visitor.id, started_at=at, last_seen_at=at, pageviews=1,
        utm_source=source, utm_medium=medium, utm_campaign=campaign, utm_content=content,
        utm_term="(not set)", channel=channel,
    ))
    session.add(Order(
        site_id=site.id, provider="orders", external_id=f"order-{key}", created_at=at + timedelta(minutes=3),
        paid_at=at + timedelta(minutes=3), status="paid", is_test=False, currency=site.currency,
        total_minor=total_minor, visitor_id=visitor.id, match_method="visitor",
    ))
    session.commit()


@pytest.fixture
def hostile(session, site):
    add_sale(session, site, HOSTILE_SOURCE, "sms", HOSTILE_CAMPAIGN, FORMULA, key="hostile")
    add_sale(session, site, "attentive", "sms", "black-friday", total_minor=12000, key="good")
    add_sale(session, site, "attentive", "text", "black_friday", total_minor=3000, key="split")
    return site


def _no_inline_script(html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert " src=" in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", html.replace("onerror=alert(1)&gt;", ""))


@pytest.mark.parametrize("path", ["/", "/reports/roi?by=source,medium,campaign,content",
                                  "/reports/compare?by=source,medium,campaign", "/sms/hygiene"])
def test_hostile_utm_values_are_escaped(logged_in, hostile, path):
    response = logged_in.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    _no_inline_script(html)
    if path.startswith("/reports"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize(
    "path", ["/", "/reports/roi", "/reports/roi.csv", "/sms/links", "/costs", "/assets/app.css"]
)
def test_security_headers_on_every_page(logged_in, hostile, path):
    response = logged_in.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";")}
    assert directives["default-src"] == "default-src 'self'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe-inline" not in directives.get("script-src", "")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin")
    response.close()


def test_login_page_has_headers_without_a_session(client):
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    _no_inline_script(response.get_data(as_text=True))


def test_roi_csv_is_what_the_page_shows_and_formulas_are_guarded(logged_in, hostile):
    query = f"site={hostile.public_id}&range=last7&by=source,medium,campaign,content&sort=revenue&dir=asc"
    page = logged_in.get("/reports/roi?" + query).get_data(as_text=True)
    shown = len(re.findall(r'<tr[^>]*>\s*<th scope="row">', page.split("<tbody>")[1].split("</tbody>")[0]))
    response = logged_in.get("/reports/roi.csv?" + query)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:5] == ["source", "medium", "campaign", "content", "sessions"]
    assert len(rows) - 2 == shown  # header and the totals row
    revenue = [r[rows[0].index("revenue")] for r in rows[1:-1]]
    assert revenue == sorted(revenue, key=float)
    hostile_row = next(r for r in rows if r[0] == HOSTILE_SOURCE)
    assert hostile_row[2] == HOSTILE_CAMPAIGN
    assert hostile_row[3] == "'" + FORMULA
    assert rows[-1][0] == "(total)"
    assert rows[-1][rows[0].index("revenue")] == "200.00"


def test_drill_down_filters_rows_and_keeps_totals(logged_in, hostile):
    url = f"/reports/roi?site={hostile.public_id}&range=last7&by=source"
    page = logged_in.get(url).get_data(as_text=True)
    assert "f_source=attentive" in page
    drilled = logged_in.get(
        f"/reports/roi?site={hostile.public_id}&range=last7&by=source,medium&f_source=attentive"
    ).get_data(as_text=True)
    body = drilled.split("<tbody>")[1].split("</tbody>")[0]
    assert "attentive" in body and "alert(1)" not in body
    assert "Shown rows" in drilled and "Total (all traffic)" in drilled
    assert "Source: attentive" in drilled


def test_compare_has_a_revenue_column_per_model(logged_in, hostile):
    page = logged_in.get(f"/reports/compare?site={hostile.public_id}&range=last7&by=source")
    html = page.get_data(as_text=True)
    for label in ("Last click", "First click", "Linear", "Position based", "Time decay", "Full impact"):
        assert label in html
    csv_rows = list(csv.reader(io.StringIO(
        logged_in.get(f"/reports/compare.csv?site={hostile.public_id}&range=last7&by=source").get_data(as_text=True)
    )))
    assert csv_rows[0][1:3] == ["revenue_last_click", "revenue_last_non_direct"]


def test_a_bad_query_is_explained(logged_in, site):
    response = logged_in.get(f"/reports/roi?site={site.public_id}&from=2026-11-20&to=2026-11-01")
    assert response.status_code == 400
    assert "swap them" in response.get_data(as_text=True)
    assert logged_in.get(f"/reports/roi.csv?site={site.public_id}&model=nope").status_code == 400


def test_mission_control_shows_totals_and_channels(logged_in, hostile):
    html = logged_in.get("/").get_data(as_text=True)
    assert "Net revenue" in html and "Attribution coverage" in html
    assert "$200.00" in html  # three sales of 50 + 120 + 30 in the last 30 days
    assert "100%" in html  # every order came from a tracked visit
    assert 'role="img"' in html and "SMS daily revenue" in html


def test_mission_control_empty_site_shows_the_snippet(logged_in, site):
    html = logged_in.get("/").get_data(as_text=True)
    assert "No data for shop.example yet" in html
    snippet = f"&lt;script defer src=&#34;http://localhost/t.js&#34; data-site=&#34;{site.public_id}&#34;"
    assert snippet in html
    assert f"/webhooks/shopify/{site.public_id}" in html


def test_mission_control_without_any_site(logged_in):
    html = logged_in.get("/").get_data(as_text=True)
    assert "tracker sites add" in html


def test_site_picker_when_several_sites(logged_in, session, hostile):
    other = create_site(session, "second.example")
    session.commit()
    html = logged_in.get("/").get_data(as_text=True)
    assert 'name="site"' in html and "second.example" in html
    html = logged_in.get(f"/?site={other.public_id}").get_data(as_text=True)
    assert "No data for second.example yet" in html


def test_manual_cost_entry(logged_in, session, site):
    token = csrf_from(logged_in.get("/costs").get_data(as_text=True))
    form = {"action": "entry", "date": "2026-11-20", "source": "Attentive", "medium": "SMS",
            "campaign": "Black-Friday", "content": "", "term": "", "cost": "150.00"}
    assert logged_in.post(f"/costs?site={site.public_id}", data=form).status_code == 400  # no CSRF token
    response = logged_in.post(f"/costs?site={site.public_id}", data={**form, "csrf_token": token})
    assert response.status_code == 302
    cost = session.scalars(select(Cost)).one()
    saved = (cost.source, cost.medium, cost.campaign, cost.cost_minor)
    assert saved == ("attentive", "sms", "black-friday", 15000)
    assert "$150.00" in logged_in.get("/costs").get_data(as_text=True)


def test_cost_csv_upload(logged_in, session, site):
    token = csrf_from(logged_in.get("/costs").get_data(as_text=True))
    text = (
        "date,source,medium,campaign,cost\n"
        "2026-11-20,attentive,sms,welcome,10.00\n"
        "2026-11-21,postscript,sms,winback,5\n"
    )
    response = logged_in.post(
        f"/costs?site={site.public_id}",
        data={"action": "upload", "csrf_token": token, "file": (io.BytesIO(text.encode()), "spend.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert sorted(c.cost_minor for c in session.scalars(select(Cost))) == [500, 1000]


def test_cost_csv_upload_errors_name_the_line(logged_in, session, site):
    token = csrf_from(logged_in.get("/costs").get_data(as_text=True))
    text = "date,source,medium,campaign,cost\n2026-11-20,attentive,sms,welcome,ten\n"
    response = logged_in.post(
        f"/costs?site={site.public_id}",
        data={"action": "upload", "csrf_token": token, "file": (io.BytesIO(text.encode()), "spend.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "Line 2" in response.get_data(as_text=True)
    assert session.scalars(select(Cost)).all() == []


def test_sms_link_builder_warns_about_split_campaigns(logged_in, hostile):
    token = csrf_from(logged_in.get("/sms/links").get_data(as_text=True))
    response = logged_in.post(f"/sms/links?site={hostile.public_id}", data={
        "csrf_token": token, "url": "https://shop.example/sale", "source": "attentive",
        "campaign": "Black Friday", "content": "", "term": "",
    })
    html = response.get_data(as_text=True)
    assert "utm_campaign=black+friday" in html
    assert "black-friday" in html and "black_friday" in html
    assert "This would split existing traffic" in html


def test_hygiene_lists_recorded_splits(logged_in, hostile):
    html = logged_in.get("/sms/hygiene").get_data(as_text=True)
    assert "black-friday" in html and "black_friday" in html
    assert "<code>text</code> (1)" in html
