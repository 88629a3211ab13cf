"""Sessionisation rules: 30-minute gaps, and a new campaign starts a new session; no midnight split."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol

from tracker.touch import campaign_signature

SESSION_GAP = timedelta(minutes=30)


@lru_cache(maxsize=4096)
def signature(url: str | None) -> tuple | None:
    """The campaign a URL carries (cached: landing URLs repeat)."""
    return campaign_signature(url)


def continues(
    started_at: datetime, last_seen_at: datetime, landing_url: str | None, ts: datetime, url: str | None
) -> bool | None:
    """Does a page view at `ts` join the visitor's latest session?

    True: it joins. False: it starts a new session after it. None: it falls before or inside the
    session and splits it, so the visitor's sessions must be rebuilt (`partition`).
    """
    own = signature(url)
    if ts < started_at:
        return None
    if own is not None and own != signature(landing_url):
        return False if ts >= last_seen_at else None
    return ts - last_seen_at < SESSION_GAP


class PageviewLike(Protocol):
    """A page view as sessionising sees it (stored or arriving): when, and on which URL."""

    ts: datetime
    url: str | None


def partition(views: Sequence[PageviewLike]) -> list[list[int]]:
    """Split page views sorted by time into sessions; returns lists of indexes into `views`."""
    sessions: list[list[int]] = []
    landing_signature = None
    last = None
    for index, view in enumerate(views):
        own = signature(view.url)
        if last is None or view.ts - last >= SESSION_GAP or (own is not None and own != landing_signature):
            sessions.append([index])
            landing_signature = own
        else:
            sessions[-1].append(index)
        last = view.ts
    return sessions
