"""What SMS really earned, in a real Chromium: the claims page, the cohorts page and click dates.

On `tracker demo` data with its platforms' claims, plus a claim, a visit and a first sale whose
names are hostile: they show as text, no script runs (any dialog fails the test), and the CSV
files guard the cells a spreadsheet would run.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from tests.browser.conftest import FORMULA_CONTENT, HOSTILE_CAMPAIGN, HOSTILE_SOURCE
from tracker.cli import main
from tracker.days import site_today
from tracker.db import utcnow
from tracker.models import Order, TrackedSession, Visitor

HOSTILE_PLATFORM = "<img src=x onerror=alert('claim')>"
FORMULA_CLAIM = "=HYPERLINK(\"http://evil.example\",\"x\")"


@pytest.fixture
def claims(runner, session, demo_data, tmp_path):
    """A hostile claim, and a first sale six days ago from a visit with hostile UTM values."""
    at = utcnow() - timedelta(days=6)
    visitor = Visitor(site_id=demo_data.id, visitor_key="hostile-first-sale", first_seen_at=at,
                      last_seen_at=at)
    session.add(visitor)
    session.flush()
    session.add(TrackedSession(
        site_id=demo_data.id, visitor_id=visitor.id, started_at=at, last_seen_at=at, pageviews=1,
        utm_source=HOSTILE_SOURCE, utm_medium="sms", utm_campaign=HOSTILE_CAMPAIGN, utm_content="(not set)",
        utm_term="(not set)", channel="SMS"))
    session.add(Order(
        site_id=demo_data.id, provider="orders", external_id="hostile-2",
        created_at=at + timedelta(minutes=3), paid_at=at + timedelta(minutes=3), status="paid",
        is_test=False, currency="USD", total_minor=2500, visitor_id=visitor.id, match_method="visitor"))
    session.commit()
    day = site_today(demo_data) - timedelta(days=2)
    path = tmp_path / "claims.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([("date", "platform", "campaign", "attributed_revenue", "attributed_orders",
                                    "clicks"), (day, HOSTILE_PLATFORM, FORMULA_CLAIM, "99.00", 2, 40)])
    result = runner.invoke(main, ["claims", "import", str(path), "--site", demo_data.public_id])
    assert result.exit_code == 0, result.output
    return demo_data


def _download(page, output_dir, name: str) -> list[list[str]]:
    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    path = output_dir / name
    download_info.value.save_as(str(path))
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_claims_page(marketer, collector, claims, output_dir):
    page = marketer
    page.click("text=Platform claims")  # Mission Control links to it
    page.wait_for_selector("table.report")
    assert "three times" in page.locator("p.hint").first.inner_text()
    platforms = set(page.locator("table.report tbody tr td:first-child").all_inner_texts())
    assert {"attentive", "postscript", "klaviyo"} <= platforms
    assert HOSTILE_PLATFORM.lower() in page.locator("table.report").inner_text()
    page.screenshot(path=str(output_dir / "pages-claims.png"), full_page=True)
    rows = _download(page, output_dir, "pages-claims.csv")
    hostile = [r for r in rows if r[0] == HOSTILE_PLATFORM.lower()]
    assert hostile and hostile[0][1] == "'" + FORMULA_CLAIM.lower()


def test_cohorts_page(marketer, collector, claims, output_dir):
    page = marketer
    page.click("nav >> text=Cohorts")
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == "What new customers are worth later"
    # The demo's ten days are newer than the default range: pick first sales from 10 to 4 days ago,
    # whose first 3 days are over.
    today = site_today(claims)
    page.fill("input[name=from]", (today - timedelta(days=10)).isoformat())
    page.fill("input[name=to]", (today - timedelta(days=4)).isoformat())
    page.select_option("select[name=by]", "source,medium,campaign")
    page.fill("input[name=horizons]", "1,3,30")
    page.click("form.report-form button[type=submit]")
    page.wait_for_selector("#cohorts-table")
    table = page.locator("#cohorts-table")
    assert table.locator("thead th").all_inner_texts()[-4:] == [
        "After 1 day", "After 3 days", "After 30 days", "Per customer"]
    assert table.locator("tbody tr").count() > 5
    assert table.locator("svg.chart.spark").count() == table.locator("tbody tr").count() + 1
    totals = table.locator("tfoot td").all_inner_texts()
    assert totals[2].startswith("$") and totals[3].startswith("$") and totals[4] == "not yet"
    hostile = table.locator("tbody tr", has_text="alert(1)").first
    assert HOSTILE_SOURCE in hostile.inner_text() and HOSTILE_CAMPAIGN in hostile.inner_text()
    page.screenshot(path=str(output_dir / "pages-cohorts.png"), full_page=True)
    rows = _download(page, output_dir, "pages-cohorts.csv")
    assert rows[0][:4] == ["source", "medium", "campaign", "customers"]
    assert rows[-1][0] == "(all customers)"
    assert sum(float(r[3]) for r in rows[1:-1]) == pytest.approx(float(rows[-1][3]))
    assert [r for r in rows if r[0] == HOSTILE_SOURCE][0][2] == HOSTILE_CAMPAIGN


def test_roi_report_by_click_date(marketer, collector, claims, output_dir):
    page = marketer
    page.goto(collector + "/reports/roi?by=source,medium,campaign,content&range=last30")
    page.wait_for_selector("#roi-table")
    page.select_option("select[name=date_basis]", "click")  # submits itself
    page.wait_for_selector("p.note")
    assert "Dated by click" in page.locator("p.note").inner_text()
    assert page.locator(".page-head .site-name").inner_text().endswith("by click date")
    assert "date_basis=click" in page.url
    row = page.locator("#roi-table tbody tr", has_text="alert(1)").first
    assert FORMULA_CONTENT in row.inner_text()
    page.screenshot(path=str(output_dir / "pages-roi-by-click.png"), full_page=True)
    rows = _download(page, output_dir, "pages-roi-by-click.csv")
    hostile = [r for r in rows if r[0] == HOSTILE_SOURCE]
    assert hostile and hostile[0][3] == "'" + FORMULA_CONTENT
    page.click(".actions >> text=Compare models")
    page.wait_for_selector("#compare-table")
    assert "Dated by click" in page.locator("p.hint").first.inner_text()
    page.go_back()
    page.click(".actions >> text=Cohorts")
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == "What new customers are worth later"
