"""Session splitting rules as plain tables: gaps, campaigns, midnight, late page views."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tracker.collect.sessions import continues, partition

T0 = datetime(2026, 11, 26, 23, 50, tzinfo=UTC)
SMS = "https://s.example/?utm_source=attentive&utm_medium=sms"
SMS2 = "https://s.example/?utm_source=postscript&utm_medium=sms"


@dataclass
class V:
    minutes: float
    url: str | None = "https://s.example/p"

    @property
    def ts(self):
        return T0 + timedelta(minutes=self.minutes)


@pytest.mark.parametrize(
    ("views", "expected"),
    [
        ([V(0), V(5), V(10)], [[0, 1, 2]]),
        ([V(0), V(29.9)], [[0, 1]]),
        ([V(0), V(30)], [[0], [1]]),
        ([V(0), V(31)], [[0], [1]]),
        ([V(0), V(20), V(45)], [[0, 1, 2]]),  # gaps, not session length, count; midnight is no split
        ([V(0, SMS), V(1), V(2, SMS)], [[0, 1, 2]]),
        ([V(0), V(1, SMS)], [[0], [1]]),
        ([V(0, SMS), V(1, SMS2), V(2)], [[0], [1, 2]]),
        ([V(0, SMS), V(1, SMS + "&utm_campaign=x")], [[0], [1]]),
        ([V(0, SMS), V(1, SMS.upper().replace("HTTPS://S.EXAMPLE/", "https://s.example/"))], [[0, 1]]),
        ([], []),
    ],
)
def test_partition(views, expected):
    assert partition(views) == expected


@pytest.mark.parametrize(
    ("minutes", "url", "expected"),
    [
        (12, None, True),  # after the last view, within 30 minutes
        (41, None, False),  # 31 minutes after the last view
        (5, None, True),  # inside the session: joins without changing anything
        (-1, None, None),  # before the session: rebuild
        (12, SMS2, False),  # a new campaign after the last view
        (5, SMS2, None),  # a new campaign inside the session splits it: rebuild
        (12, SMS, True),  # the session's own campaign again
    ],
)
def test_continues(minutes, url, expected):
    started, last = T0, T0 + timedelta(minutes=10)
    assert continues(started, last, SMS, T0 + timedelta(minutes=minutes), url) is expected
