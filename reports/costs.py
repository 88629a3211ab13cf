"""Ad and SMS spend: validating rows (CSV or JSON) and saving them, a re-import replacing its keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, delete, or_
from sqlalchemy.orm import Session

from reports import csvimport
from tracker.errors import CostError
from tracker.models import Cost
from tracker.money import InvalidMoney, normalise_currency, to_minor
from tracker.touch import NOT_SET, normalise_value

REQUIRED_COLUMNS = ("date", "source", "medium", "campaign", "cost")
OPTIONAL_COLUMNS = ("content", "term", "currency")
KEY_FIELDS = ("date", "source", "medium", "campaign", "content", "term")
# Rows deleted per statement when replacing keys.
DELETE_BATCH = 200


def read_csv(text: str, currency: str) -> list[dict]:
    """Parse a spend CSV (header line first); raises CostError naming every bad line."""
    return _parse(csvimport.records(text, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, CostError), currency)


def parse_cost_rows(rows: Iterable[Mapping], currency: str, first_line: int = 1) -> list[dict]:
    """Validate JSON-style rows; errors name the row index (first_line=0) or line number."""
    numbered = []
    for i, row in enumerate(rows, start=first_line):
        if not isinstance(row, Mapping):
            raise CostError(f"Row {i}: expected an object with date, source, medium, campaign, cost.")
        numbered.append((i, {str(k).strip().lower(): v for k, v in row.items()}))
    return _parse(numbered, currency, label="Row")


def _parse(numbered: list[tuple[int, Mapping]], currency: str, label: str = "Line") -> list[dict]:
    errors: list[str] = []
    merged: dict[tuple, dict] = {}
    for line, record in numbered:
        try:
            row = _row(record, currency)
        except CostError as exc:
            errors.append(f"{label} {line}: {exc}")
            continue
        key = tuple(row[f] for f in KEY_FIELDS)
        if key in merged:  # the same key twice in one upload (several ad sets): add them up
            merged[key]["cost_minor"] += row["cost_minor"]
        else:
            merged[key] = row
    csvimport.refuse(errors, CostError)
    if not merged:
        raise CostError("There are no spend rows to import.")
    return list(merged.values())


def _text(record: Mapping, name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CostError(f"'{name}' must be text.")
    return value


def _key(record: Mapping, name: str, required: bool = False) -> str:
    value = normalise_value(_text(record, name))
    if value == NOT_SET:
        if required:
            raise CostError(f"'{name}' is empty; every row needs a date, source, medium and cost.")
        return ""
    return value


def _row(record: Mapping, currency: str) -> dict:
    raw_date = _text(record, "date").strip()
    try:
        day = date.fromisoformat(raw_date)
    except ValueError:
        raise CostError(f"date {raw_date!r} is not a date like 2026-11-25.") from None
    row_currency = _text(record, "currency").strip()
    if row_currency:
        try:
            row_currency = normalise_currency(row_currency)
        except InvalidMoney as exc:
            raise CostError(str(exc)) from None
        if row_currency != currency:
            raise CostError(f"currency {row_currency} differs from the site's {currency}; "
                             "convert the spend first.")
    raw_cost = record.get("cost")
    if isinstance(raw_cost, int | Decimal) and not isinstance(raw_cost, bool):
        raw_cost = str(raw_cost)  # a JSON number, read exactly
    if not isinstance(raw_cost, str) or not raw_cost.strip():
        raise CostError("'cost' must be a decimal amount such as 12.50.")
    try:
        cost_minor = to_minor(raw_cost.strip().replace(",", ""), currency)
    except InvalidMoney as exc:
        raise CostError(f"cost {raw_cost!r}: {exc}") from None
    if cost_minor < 0:
        raise CostError(f"cost {raw_cost!r} is negative; spend is zero or more.")
    return {
        "date": day,
        "source": _key(record, "source", required=True),
        "medium": _key(record, "medium", required=True),
        "campaign": _key(record, "campaign"),
        "content": _key(record, "content"),
        "term": _key(record, "term"),
        "currency": currency,
        "cost_minor": cost_minor,
    }


def save_costs(session: Session, site_id: int, rows: list[dict]) -> int:
    """Insert the rows, replacing any existing spend with the same day and key; the caller commits."""
    for i in range(0, len(rows), DELETE_BATCH):
        batch = rows[i : i + DELETE_BATCH]
        matches = [
            and_(*(getattr(Cost, f) == row[f] for f in KEY_FIELDS)) for row in batch
        ]
        session.execute(delete(Cost).where(Cost.site_id == site_id, or_(*matches)))
    session.execute(Cost.__table__.insert(), [{"site_id": site_id, **row} for row in rows])
    return len(rows)
