"""Server-side SVG charts: accessible, escaped, one bar per day."""

from datetime import date, timedelta
from decimal import Decimal

from reports.charts import bar_chart


def test_chart_has_a_title_and_a_bar_per_day():
    points = [(date(2026, 11, 1) + timedelta(days=i), Decimal(i * 10)) for i in range(5)]
    svg = str(bar_chart(points, title="SMS daily revenue", money=lambda v: f"${v}"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'role="img"' in svg
    assert 'aria-label="SMS daily revenue: 2026-11-01 to 2026-11-05, total $100"' in svg
    assert svg.count('class="chart-bar"') == 5
    assert "2026-11-05: $40" in svg
    assert "max $40" in svg


def test_chart_escapes_labels_from_data():
    svg = str(bar_chart([(date(2026, 11, 1), Decimal(5))], title='<script>alert(1)</script>"'))
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in svg


def test_empty_chart_says_so():
    svg = str(bar_chart([], title="Email daily revenue"))
    assert 'aria-label="Email daily revenue: no data"' in svg
    assert "chart-bar" not in svg


def test_zero_revenue_days_draw_no_height():
    svg = str(bar_chart([(date(2026, 11, 1), Decimal(0)), (date(2026, 11, 2), Decimal(0))], title="x"))
    assert svg.count('height="0"') == 2
