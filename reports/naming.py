"""The SMS naming convention: building campaign links and spotting values spelt several ways."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import func, select

from tracker.db import utcnow
from tracker.errors import LinkError
from tracker.limits import URL_LENGTH
from tracker.models import TrackedSession
from tracker.touch import NOT_SET, SMS_MEDIUM, SMS_MEDIUMS, normalise_value

UTM_FIELDS = ("source", "medium", "campaign", "content", "term")


def fingerprint(value: str, dimension: str = "") -> str:
    """What a value means, ignoring case, spaces, dashes and underscores (and text vs sms)."""
    key = re.sub(r"[\W_]+", "", value.strip().lower())
    if dimension == "medium" and (value.strip().lower() in SMS_MEDIUMS or key in SMS_MEDIUMS):
        return SMS_MEDIUM
    return key


def clean_value(value: str) -> str:
    """How the tracker will record a value (tracker.touch.normalise_value); '' for no value."""
    recorded = normalise_value(value)
    return "" if recorded == NOT_SET else recorded


@dataclass(frozen=True)
class Split:
    """Values of one dimension that mean the same thing but are recorded apart."""

    dimension: str
    spellings: tuple[tuple[str, int], ...]  # (value, sessions), most sessions first

    @property
    def suggested(self) -> str:
        return self.spellings[0][0]

    @property
    def sessions(self) -> int:
        return sum(n for _, n in self.spellings)


def find_splits(counts: Mapping[str, Iterable[tuple[str, int]]]) -> list[Split]:
    """Group each dimension's recorded values by fingerprint; report groups with several spellings."""
    found = []
    for dimension, values in counts.items():
        groups: dict[str, dict[str, int]] = defaultdict(dict)
        for value, sessions in values:
            if not value or value.startswith("("):
                continue  # (not set), (direct), (none)
            key = fingerprint(value, dimension)
            if key:
                groups[key][value] = groups[key].get(value, 0) + sessions
        for spellings in groups.values():
            if len(spellings) > 1:
                ordered = tuple(sorted(spellings.items(), key=lambda kv: (-kv[1], kv[0])))
                found.append(Split(dimension, ordered))
    found.sort(key=lambda s: -s.sessions)
    return found


def conflicts(wanted: Mapping[str, str], known: Mapping[str, Iterable[tuple[str, int]]]) -> list[dict]:
    """For each wanted value, the recorded values it would be split from (same meaning, other spelling)."""
    warnings = []
    for dimension, value in wanted.items():
        if not value:
            continue
        recorded = clean_value(value)
        key = fingerprint(value, dimension)
        others = [
            (v, n) for v, n in known.get(dimension, ())
            if v != recorded and fingerprint(v, dimension) == key
        ]
        if others:
            others.sort(key=lambda kv: -kv[1])
            warnings.append({"dimension": dimension, "value": recorded, "existing": others})
    return warnings


def build_link(landing_url: str, source: str, campaign: str, content: str = "", term: str = "",
               medium: str = SMS_MEDIUM) -> str:
    """The landing URL with utm_* parameters set by the convention (existing utm_* replaced)."""
    landing_url = landing_url.strip()
    if len(landing_url) > URL_LENGTH:
        raise LinkError(f"The landing page URL is longer than {URL_LENGTH} characters.")
    parts = urlsplit(landing_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError("The landing page must be a full web address starting with https://.")
    if not source.strip():
        raise LinkError("Name the SMS platform as the source (e.g. attentive, postscript, klaviyo).")
    if not campaign.strip():
        raise LinkError("Name the campaign or flow (e.g. black-friday, welcome-series).")
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("utm_")]
    utm = {"utm_source": source, "utm_medium": medium, "utm_campaign": campaign,
           "utm_content": content, "utm_term": term}
    kept += [(k, clean_value(v)) for k, v in utm.items() if v.strip()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(kept), parts.fragment))


# How far back recorded traffic counts when looking for other spellings.
HISTORY = timedelta(days=365)
PLATFORMS = ("attentive", "postscript", "klaviyo", "omnisend", "recart", "smsbump", "twilio")


def recorded_values(db, site) -> dict[str, list[tuple[str, int]]]:
    """Each UTM dimension's recorded values with their session counts (one GROUP BY per dimension)."""
    since = utcnow() - HISTORY
    values = {}
    for name in UTM_FIELDS:
        column = getattr(TrackedSession, f"utm_{name}")
        rows = db.execute(
            select(column, func.count())
            .where(TrackedSession.site_id == site.id, TrackedSession.started_at >= since)
            .group_by(column)
        )
        values[name] = [(value, count) for value, count in rows if value]
    return values
