"""Drill-down, sorting and subtotals of the ROI table."""

import pytest

from reports.web.roi_view import drill_params, next_dimension, sort_rows, summarise

FIELDS = ("source", "revenue", "roi", "sessions", "orders", "cost")
ROWS = [
    dict(zip(FIELDS, values, strict=True))
    for values in [
        ("attentive", "100.00", "1.50", 10, "2.00", "40.00"),
        ("postscript", "300.00", None, 5, "1.00", "0.00"),
        ("Klaviyo", "50.50", "-0.50", 0, "0.50", "101.00"),
    ]
]


@pytest.mark.parametrize(
    "by,expected",
    [(("channel",), "source"), (("source",), "medium"), (("source", "medium", "campaign"), "content"),
     (("source", "medium", "campaign", "content", "term"), None), (("campaign",), "content")],
)
def test_next_dimension(by, expected):
    assert next_dimension(by) == expected


def test_drill_params_filter_on_the_row_and_add_the_next_dimension():
    params = drill_params({"source": "attentive", "medium": "sms"}, ("source", "medium"), {})
    assert params == {"f_source": "attentive", "f_medium": "sms", "by": "source,medium,campaign"}
    assert drill_params({"source": "(unattributed)"}, ("source",), {}) is None


def test_sort_numbers_numerically_and_missing_last():
    assert [r["source"] for r in sort_rows(ROWS, "revenue", True)] == ["postscript", "attentive", "Klaviyo"]
    assert [r["source"] for r in sort_rows(ROWS, "roi", False)] == ["Klaviyo", "attentive", "postscript"]
    assert [r["source"] for r in sort_rows(ROWS, "roi", True)] == ["attentive", "Klaviyo", "postscript"]
    assert [r["source"] for r in sort_rows(ROWS, "source", False)] == ["attentive", "Klaviyo", "postscript"]


def test_summarise_recomputes_ratios_from_sums():
    total = summarise(ROWS)
    assert total["revenue"] == "450.50"
    assert total["cost"] == "141.00"
    assert total["orders"] == "3.50"
    assert total["sessions"] == 15
    assert total["roi"] == "2.20"  # (450.50 - 141) / 141
    assert total["aov"] == "128.71"
    assert summarise([])["roi"] is None
