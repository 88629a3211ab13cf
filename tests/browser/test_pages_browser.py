"""A marketer's morning in a real Chromium: log in, Mission Control, the ROI report, drill down, CSV."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

from tests.browser.conftest import FORMULA_CONTENT, HOSTILE_CAMPAIGN, HOSTILE_SOURCE


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _args(page) -> dict[str, str]:
    return _query(page.url)


def test_mission_control(marketer, collector, output_dir):
    page = marketer
    assert page.locator("h1").inner_text() == "Mission Control"
    assert page.get_by_text("Net revenue").count() == 2
    assert page.locator("table.data tbody tr").first.locator("th").inner_text() == "SMS"
    assert page.locator("svg.chart").count() >= 3
    assert "daily revenue" in page.locator("svg.chart").first.get_attribute("aria-label")
    page.screenshot(path=str(output_dir / "pages-mission-control.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(output_dir / "pages-mission-control-phone.png"), full_page=True)


def test_roi_report_model_dates_drilldown_and_csv(marketer, collector, output_dir):
    page = marketer
    page.click("nav >> text=ROI report")
    page.wait_for_selector("#roi-table")
    assert page.locator("#roi-table tfoot").inner_text().startswith("Total")
    # The hostile values are shown as text, never run.
    assert page.get_by_text(HOSTILE_SOURCE).count() >= 1
    assert page.get_by_text(HOSTILE_CAMPAIGN).count() >= 1
    assert page.locator("#roi-table img").count() == 0
    page.screenshot(path=str(output_dir / "pages-roi-default.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(output_dir / "pages-roi-phone.png"))
    page.set_viewport_size({"width": 1366, "height": 900})

    page.select_option("select[name=model]", "linear")
    page.wait_for_url("**model=linear**")
    assert "Linear" in page.locator(".site-name").inner_text()

    page.select_option("select[name=range]", "last7")
    page.wait_for_url("**range=last7**")
    args = _args(page)
    assert args["model"] == "linear"
    shown_from = page.locator("input[name=from]").input_value()
    shown_to = page.locator("input[name=to]").input_value()

    page.fill("input[name=from]", shown_from)
    page.fill("input[name=to]", shown_from)
    page.click("form.report-form button[type=submit]")
    page.wait_for_url("**range=custom**")
    assert page.locator("input[name=to]").input_value() == shown_from
    assert shown_to >= shown_from

    # Back to the last 7 days by source, then drill into the first source.
    page.select_option("select[name=range]", "last7")
    page.wait_for_url(lambda url: _query(url).get("range") == "last7")
    page.select_option("select[name=by]", "source")
    page.wait_for_url(lambda url: _query(url).get("by") == "source")
    first = page.locator("#roi-table tbody tr").first.locator("th a")
    source = first.inner_text()
    first.click()
    page.wait_for_url("**f_source=**")
    assert _args(page)["by"] == "source,medium"
    assert _args(page)["f_source"] == source
    assert f"Source: {source}" in page.locator("nav.crumbs").inner_text()
    cells = page.locator("#roi-table tbody tr th").all_inner_texts()
    assert cells and all(text == source for text in cells)
    page.screenshot(path=str(output_dir / "pages-roi-drilldown.png"), full_page=True)

    # Sort by revenue ascending, then download what is on screen.
    page.click("#roi-table thead >> text=Revenue")
    page.wait_for_url("**sort=revenue**")
    shown = page.locator("#roi-table tbody tr").count()
    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    download = download_info.value
    path = output_dir / "pages-roi-drilldown.csv"
    download.save_as(str(path))
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0][:3] == ["source", "medium", "sessions"]
    body = rows[1:-2]  # then "(shown rows)" and "(all traffic)"
    assert len(body) == shown
    assert all(r[0] == source for r in body)
    assert rows[-2][0] == "(shown rows)" and rows[-1][0] == "(all traffic)"


def test_hostile_values_are_text_in_page_and_guarded_in_csv(marketer, collector, output_dir):
    page = marketer
    page.goto(collector + "/reports/roi?by=source,medium,campaign,content&range=last30")
    row = page.locator("#roi-table tbody tr", has_text="alert(1)").first
    assert HOSTILE_SOURCE in row.inner_text()
    assert FORMULA_CONTENT in row.inner_text()
    page.screenshot(path=str(output_dir / "pages-roi-hostile.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    path = output_dir / "pages-roi-hostile.csv"
    download_info.value.save_as(str(path))
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    hostile = [r for r in rows if r[0] == HOSTILE_SOURCE]
    assert hostile and hostile[0][2] == HOSTILE_CAMPAIGN
    assert hostile[0][3] == "'" + FORMULA_CONTENT


def test_compare_models_and_sms_tools(marketer, collector, output_dir):
    page = marketer
    page.click("nav >> text=Compare models")
    page.wait_for_selector("#compare-table")
    headers = page.locator("#compare-table thead th").all_inner_texts()
    assert any(h.startswith("Last click") for h in headers) and any(h.startswith("Linear") for h in headers)
    page.screenshot(path=str(output_dir / "pages-compare.png"), full_page=True)

    page.click("nav >> text=SMS links")
    page.fill("input[name=url]", "https://demo.example/collections/sale")
    page.fill("input[name=source]", "attentive")
    page.fill("input[name=campaign]", "Black Friday")
    page.fill("input[name=content]", "20off")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#built-link")
    link = page.locator("#built-link").inner_text()
    assert "utm_medium=sms" in link and "utm_source=attentive" in link
    assert "black-friday" in page.locator(".warning").inner_text()
    page.screenshot(path=str(output_dir / "pages-sms-links.png"), full_page=True)

    page.click("nav >> text=UTM hygiene")
    page.wait_for_selector("h1")
    page.screenshot(path=str(output_dir / "pages-utm-hygiene.png"), full_page=True)
