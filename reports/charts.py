"""Server-side SVG charts: no script, no CDN, every label escaped, readable by screen readers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH = 320
HEIGHT = 120
# Room for the axis labels: left for the top value, bottom for the first and last date.
PAD_LEFT = 4
PAD_TOP = 16
PAD_BOTTOM = 18
BAR_GAP = 0.2


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def bar_chart(
    points: Sequence[tuple[date, Decimal]],
    *,
    title: str,
    money: Callable[[Decimal], str] = str,
    css_class: str = "",
) -> Markup:
    """A daily bar chart; `points` are (day, amount) in date order, `money` formats an amount."""
    label = f"{title}: " + (
        f"{points[0][0].isoformat()} to {points[-1][0].isoformat()}, "
        f"total {money(sum((v for _, v in points), Decimal(0)))}"
        if points
        else "no data"
    )
    parts = [
        f'<svg class="chart {escape(css_class)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    base_y = PAD_TOP + plot_h
    parts.append(
        f'<line class="chart-axis" x1="{PAD_LEFT}" y1="{base_y}" x2="{WIDTH}" y2="{base_y}"/>'
    )
    if points:
        top = max((v for _, v in points), default=Decimal(0))
        step = (WIDTH - PAD_LEFT) / len(points)
        bar_w = step * (1 - BAR_GAP) if len(points) > 1 else step / 3
        for i, (day, value) in enumerate(points):
            height = float(value / top) * plot_h if top > 0 and value > 0 else 0.0
            x = PAD_LEFT + i * step + (step - bar_w) / 2
            y = base_y - height
            parts.append(
                f'<rect class="chart-bar" x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(bar_w)}" '
                f'height="{_fmt(max(height, 0.0))}"><title>{escape(day.isoformat())}: '
                f"{escape(money(value))}</title></rect>"
            )
        parts.append(
            f'<text class="chart-label" x="{PAD_LEFT}" y="{PAD_TOP - 4}">'
            f"max {escape(money(top))}</text>"
        )
        parts.append(
            f'<text class="chart-label" x="{PAD_LEFT}" y="{HEIGHT - 4}">'
            f"{escape(points[0][0].strftime('%b %d'))}</text>"
        )
        parts.append(
            f'<text class="chart-label" x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">'
            f"{escape(points[-1][0].strftime('%b %d'))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


SPARK_WIDTH = 120
SPARK_HEIGHT = 44
SPARK_LABEL = 11  # room under the bars for their labels


def step_chart(
    points: Sequence[tuple[str, Decimal | None]],
    *,
    title: str,
    money: Callable[[Decimal], str] = str,
) -> Markup:
    """A small bar per labelled step (a cohort's value per customer after each horizon); a step
    without a value yet (None) is an empty dashed outline."""
    known = [v for _, v in points if v is not None]
    top = max(known, default=Decimal(0))
    label = f"{title}: " + ", ".join(
        f"{name} {money(value) if value is not None else 'not yet'}" for name, value in points)
    parts = [
        f'<svg class="chart spark" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    plot_h = SPARK_HEIGHT - SPARK_LABEL - 2
    base_y = 2 + plot_h
    step = SPARK_WIDTH / max(len(points), 1)
    bar_w = step * (1 - BAR_GAP)
    for i, (name, value) in enumerate(points):
        x = i * step + (step - bar_w) / 2
        if value is None:
            parts.append(f'<rect class="chart-pending" x="{_fmt(x)}" y="2" width="{_fmt(bar_w)}" '
                         f'height="{_fmt(plot_h)}"><title>{escape(name)}: not yet</title></rect>')
        else:
            height = float(value / top) * plot_h if top > 0 and value > 0 else 0.0
            parts.append(
                f'<rect class="chart-bar" x="{_fmt(x)}" y="{_fmt(base_y - height)}" width="{_fmt(bar_w)}" '
                f'height="{_fmt(height)}"><title>{escape(name)}: {escape(money(value))}</title></rect>')
        parts.append(f'<text class="chart-label" x="{_fmt(x + bar_w / 2)}" y="{SPARK_HEIGHT - 1}" '
                     f'text-anchor="middle">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
