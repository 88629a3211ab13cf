"""What SMS and email platforms claim: `tracker claims import FILE.csv --site SITE`.

Columns `date,platform,campaign,attributed_revenue`, optional `attributed_orders,clicks,sends,
currency`. As for spend (reports.costs): keys are normalised like UTM values (the platform is the
UTM source its links carry), a day + platform + campaign imported again replaces the earlier row,
and any bad line stops the import, naming its line; nothing is saved then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from reports import csvimport
from reports.models import Claim
from reports.roi import roi_report
from tracker.errors import ClaimError
from tracker.money import InvalidMoney, exponent, format_decimal, normalise_currency, to_minor
from tracker.touch import NOT_SET, normalise_value

REQUIRED_COLUMNS = ("date", "platform", "campaign", "attributed_revenue")
OPTIONAL_COLUMNS = ("attributed_orders", "clicks", "sends", "currency")
KEY_FIELDS = ("date", "platform", "campaign")
DELETE_BATCH = 200


def read_csv(text: str, currency: str) -> list[dict]:
    """Parse a claims CSV (header line first); raises ClaimError naming every bad line."""
    errors: list[str] = []
    rows: dict[tuple, dict] = {}
    for line, record in csvimport.records(text, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, ClaimError):
        try:
            row = _row(record, currency)
        except ClaimError as exc:
            errors.append(f"Line {line}: {exc}")
            continue
        key = tuple(row[f] for f in KEY_FIELDS)
        if key in rows:
            errors.append(f"Line {line}: {row['platform']} / {row['campaign']} on {row['date']} "
                          "is in the file twice.")
            continue
        rows[key] = row
    csvimport.refuse(errors, ClaimError)
    if not rows:
        raise ClaimError("There are no claims to import.")
    return list(rows.values())


def _row(record: Mapping[str, str | None], currency: str) -> dict:
    text = {k: (v or "").strip() for k, v in record.items() if k is not None}
    try:
        day = date.fromisoformat(text.get("date", ""))
    except ValueError:
        raise ClaimError(f"date {text.get('date', '')!r} is not a date like 2026-11-25.") from None
    platform, campaign = normalise_value(text.get("platform", "")), normalise_value(text.get("campaign", ""))
    if platform == NOT_SET:
        raise ClaimError("'platform' is empty; name the platform as its links' utm_source (attentive, ...).")
    if text.get("currency"):
        try:
            row_currency = normalise_currency(text["currency"])
        except InvalidMoney as exc:
            raise ClaimError(str(exc)) from None
        if row_currency != currency:
            raise ClaimError(f"currency {row_currency} differs from the site's {currency}; convert it first.")
    try:
        revenue = to_minor(text.get("attributed_revenue", "").replace(",", ""), currency)
    except InvalidMoney as exc:
        raise ClaimError(f"attributed_revenue {text.get('attributed_revenue', '')!r}: {exc}") from None
    if revenue < 0:
        raise ClaimError("attributed_revenue is negative.")
    return {"date": day, "platform": platform, "campaign": "" if campaign == NOT_SET else campaign,
            "currency": currency, "revenue_minor": revenue, "orders": _count(text, "attributed_orders"),
            "clicks": _count(text, "clicks"), "sends": _count(text, "sends")}


def _count(text: Mapping[str, str], name: str) -> int | None:
    raw = text.get(name, "").replace(",", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise ClaimError(f"'{name}' must be a whole number, not {raw!r}.")
    return int(raw)


def save_claims(session: Session, site_id: int, rows: list[dict]) -> int:
    """Insert the rows, replacing claims of the same day, platform and campaign; the caller commits."""
    for i in range(0, len(rows), DELETE_BATCH):
        batch = rows[i : i + DELETE_BATCH]
        session.execute(delete(Claim).where(Claim.site_id == site_id, or_(
            *(and_(*(getattr(Claim, f) == row[f] for f in KEY_FIELDS)) for row in batch))))
    session.execute(Claim.__table__.insert(), [{"site_id": site_id, **row} for row in rows])
    return len(rows)


# --- claims against the store's own figures ---------------------------------------------------


def claims_report(session: Session, query) -> dict:
    """Per platform and campaign over the query's range: what the platform claims, what the
    tracker credits the same source and campaign under the query's model and lookback, the
    over-claim ratio (claimed / tracked), and the visits that landed against the clicks claimed."""
    site = query.site
    grouped = session.execute(
        select(Claim.platform, Claim.campaign, func.sum(Claim.revenue_minor), func.sum(Claim.orders),
               func.count(Claim.orders), func.sum(Claim.clicks), func.count(Claim.clicks))
        .where(Claim.site_id == site.id, Claim.date >= query.date_from, Claim.date <= query.date_to)
        .group_by(Claim.platform, Claim.campaign)
    ).all()
    # Grouped as the traffic rollups keep visits (source, medium, campaign), then added up over the
    # media: a platform's claim covers every medium its links carry.
    tracked_report = roi_report(session, dataclasses.replace(query, by=("source", "medium", "campaign")))
    tracked: dict[tuple[str, str], dict] = {}
    for r in tracked_report["rows"]:
        row = tracked.setdefault((r["source"], r["campaign"]), {"revenue": Decimal(0), "orders": Decimal(0),
                                                                "sessions": 0})
        row["revenue"] += Decimal(r["revenue"])
        row["orders"] += Decimal(r["orders"])
        row["sessions"] += r["sessions"]
    exp = exponent(site.currency)
    rows = []
    claimed_total = 0
    for platform, campaign, revenue, orders, with_orders, clicks, with_clicks in grouped:
        row = tracked.get((platform, campaign or NOT_SET), {})
        tracked_revenue = row.get("revenue", Decimal(0))
        claimed = Decimal(int(revenue)).scaleb(-exp)
        landed = int(row.get("sessions", 0))
        rows.append({
            "platform": platform,
            "campaign": campaign or NOT_SET,
            "claimed_revenue": format_decimal(claimed, exp),
            "claimed_orders": int(orders) if with_orders else None,
            "tracked_revenue": format_decimal(tracked_revenue, exp),
            "tracked_orders": format_decimal(row.get("orders", Decimal(0)), 2),
            "over_claim": _ratio(claimed, tracked_revenue),
            "clicks": int(clicks) if with_clicks else None,
            "landed_sessions": landed,
            "landed_share": _ratio(Decimal(landed), Decimal(int(clicks))) if with_clicks and clicks else None,
        })
        claimed_total += int(revenue)
    rows.sort(key=lambda r: (-Decimal(r["claimed_revenue"]), r["platform"], r["campaign"]))
    net = Decimal(tracked_report["totals"]["revenue"])
    claimed_sum = Decimal(claimed_total).scaleb(-exp)
    return {
        "site": site.public_id, "from": query.date_from.isoformat(), "to": query.date_to.isoformat(),
        "model": query.model, "lookback": query.lookback, "currency": site.currency,
        "rows": rows,
        "totals": {"claimed_revenue": format_decimal(claimed_sum, exp),
                   "net_revenue": format_decimal(net, exp),
                   "claimed_share_of_net": _ratio(claimed_sum, net)},
    }


def _ratio(numerator: Decimal, denominator: Decimal) -> str | None:
    if not denominator:
        return None
    return str((numerator / denominator).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))
