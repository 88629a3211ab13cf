"""The ROI table as the page shows it: drill-down filters, sorting, subtotals and CSV rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from reports.credit import UNATTRIBUTED
from reports.web.format import to_decimal
from tracker.touch import DIMENSIONS

# The drill-down path; clicking a row filters on it and adds the next dimension.
HIERARCHY = DIMENSIONS
COUNT_METRICS = ("sessions", "visitors")
SUM_METRICS = ("orders", "revenue", "new_customers", "cost")
RATIO_METRICS = ("roi", "roas", "cpa", "aov", "conversion_rate")
METRICS = COUNT_METRICS + SUM_METRICS + RATIO_METRICS
LABELS = {
    "channel": "Channel", "source": "Source", "medium": "Medium", "campaign": "Campaign",
    "content": "Content", "term": "Term", "sessions": "Sessions", "visitors": "Visitors",
    "orders": "Orders", "revenue": "Revenue", "new_customers": "New customers", "cost": "Cost",
    "roi": "ROI", "roas": "ROAS", "cpa": "CPA", "aov": "AOV", "conversion_rate": "Conv. rate",
}
FILTER_PREFIX = "f_"


def filters_from(args: Mapping[str, str]) -> dict[str, str]:
    """Drill-down filters from the query string (?f_source=attentive&f_medium=sms)."""
    found = {}
    for dim in HIERARCHY:
        value = args.get(FILTER_PREFIX + dim)
        if value is not None:
            found[dim] = value
    return found


def apply_filters(rows: Sequence[dict], filters: Mapping[str, str]) -> list[dict]:
    if not filters:
        return list(rows)
    return [row for row in rows if all(row.get(dim) == value for dim, value in filters.items())]


def next_dimension(by: Sequence[str]) -> str | None:
    """The dimension a click on a row adds: the one after the deepest shown."""
    deepest = max((HIERARCHY.index(d) for d in by if d in HIERARCHY), default=-1)
    following = [d for d in HIERARCHY[deepest + 1 :] if d not in by]
    return following[0] if following else None


def drill_params(row: Mapping[str, object], by: Sequence[str], filters: Mapping[str, str]) -> dict | None:
    """Query parameters for the drill-down link of a row, or None at the bottom of the path."""
    following = next_dimension(by)
    if following is None or row.get(by[0]) == UNATTRIBUTED:
        return None
    params = {FILTER_PREFIX + dim: value for dim, value in filters.items()}
    for dim in by:
        params[FILTER_PREFIX + dim] = str(row.get(dim, ""))
    params["by"] = ",".join([*by, following])
    return params


def sort_rows(rows: Sequence[dict], key: str | None, descending: bool) -> list[dict]:
    """Rows sorted on a column; empty values (n/a ratios) always last."""
    if not key:
        return list(rows)
    if key in METRICS:
        present = [r for r in rows if to_decimal(r.get(key)) is not None]
        missing = [r for r in rows if to_decimal(r.get(key)) is None]
        present.sort(key=lambda r: to_decimal(r.get(key)), reverse=descending)
        return present + missing
    return sorted(rows, key=lambda r: str(r.get(key, "")).lower(), reverse=descending)


def _ratio(top: Decimal, bottom: Decimal, places: int) -> str | None:
    if not bottom:
        return None
    return str((top / bottom).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def summarise(rows: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """A subtotal of rows in the report's own format (strings for money, None for n/a)."""
    total: dict[str, object] = {m: sum(int(r.get(m) or 0) for r in rows) for m in COUNT_METRICS}
    sums = {m: sum((to_decimal(r.get(m)) or Decimal(0) for r in rows), Decimal(0)) for m in SUM_METRICS}
    for name, value in sums.items():
        total[name] = str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))
    revenue, cost, orders = sums["revenue"], sums["cost"], sums["orders"]
    total["roi"] = _ratio(revenue - cost, cost, 2)
    total["roas"] = _ratio(revenue, cost, 2)
    total["cpa"] = _ratio(cost, orders, 2)
    total["aov"] = _ratio(revenue, orders, 2)
    total["conversion_rate"] = _ratio(orders, Decimal(total["sessions"]), 4)
    return total


def csv_table(
    by: Sequence[str], rows: Sequence[Mapping[str, object]], totals: Mapping[str, object] | None,
    total_label: str = "(total)",
) -> tuple[list[str], list[list[object]]]:
    """Header and rows for the CSV download: the same columns and order as the page."""
    header = [*by, *METRICS]
    body = [[row.get(d, "") for d in by] + [row.get(m) for m in METRICS] for row in rows]
    if totals is not None:
        body.append([total_label] + [""] * (len(by) - 1) + [totals.get(m) for m in METRICS])
    return header, body
