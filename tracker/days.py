"""A site's local days: report dates are days in the site's time zone, stored instants are UTC."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tracker.db import utcnow


def site_today(site, now: datetime | None = None) -> date:
    """Today's date in the site's time zone (`site` is anything with a `timezone`)."""
    return (now or utcnow()).astimezone(ZoneInfo(site.timezone)).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Midnight of `day` in the site's zone, in UTC (DST days are 23 or 25 hours long)."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def range_bounds(date_from: date, date_to: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC covering local dates date_from..date_to inclusive."""
    return day_start(date_from, tz), day_start(date_to + timedelta(days=1), tz)


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def local_days(start: datetime, end: datetime, tz: ZoneInfo) -> Callable[[datetime], date]:
    """local_day() for many instants in [start, end], by looking each up among the day starts."""
    day = local_day(start, tz)
    midnights, dates = [], []
    while (midnight := day_start(day, tz)) <= end:
        midnights.append(midnight)
        dates.append(day)
        day += timedelta(days=1)
    return lambda at: dates[bisect_right(midnights, at) - 1]


def days_between(date_from: date, date_to: date) -> Iterator[date]:
    """Every day from date_from to date_to, both included."""
    day = date_from
    while day <= date_to:
        yield day
        day += timedelta(days=1)


def runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Contiguous runs (first, last) of a set of days."""
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and out[-1][1] + timedelta(days=1) == day:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out
