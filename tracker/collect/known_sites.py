"""Site lookups for the hot path: public id (or domain) to what the collector needs, briefly cached."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from tracker.identity import DEFAULT_PHONE_REGION
from tracker.models import Site

# A new site is seen within this many seconds by every collector process; a removed one too.
TTL_SECONDS = 30.0
# Unknown ids are remembered for less time, so a site created a moment ago starts counting soon.
MISS_TTL_SECONDS = 2.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class SiteInfo:
    id: int
    public_id: str
    host: str
    phone_region: str
    respect_dnt: bool


class KnownSites:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._cache: dict[str, tuple[float, SiteInfo | None]] = {}
        self._lock = threading.Lock()

    def get(self, ref: str) -> SiteInfo | None:
        known, info = self.cached(ref)
        if known:
            return info
        now = time.monotonic()
        info = self._load(ref)
        with self._lock:
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[ref] = (now + (TTL_SECONDS if info else MISS_TTL_SECONDS), info)
        return info

    def cached(self, ref: str) -> tuple[bool, SiteInfo | None]:
        """(known, info) from the cache alone: known is False when only the database can tell."""
        entry = self._cache.get(ref)
        if entry is not None and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def _load(self, ref: str) -> SiteInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Site.id, Site.public_id, Site.domain, Site.settings)
                .where(or_(Site.public_id == ref, Site.domain == ref.lower()))
                .order_by(Site.id)
                .limit(1)
            ).first()
        if row is None:
            return None
        settings = row.settings if isinstance(row.settings, dict) else {}
        region = settings.get("phone_region") or DEFAULT_PHONE_REGION
        return SiteInfo(
            id=row.id,
            public_id=row.public_id,
            host=row.domain,
            phone_region=str(region).upper(),
            respect_dnt=bool(settings.get("respect_dnt")),
        )
