"""Beacons: strict parsing and validation of /collect bodies, pixel queries and API events."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from tracker import strictjson
from tracker.errors import InvalidEvent, MalformedJson
from tracker.identity import InvalidIdentity, normalise_email
from tracker.limits import (
    EMAIL_LENGTH,
    TITLE_LENGTH,
    URL_LENGTH,
    USER_AGENT_LENGTH,
    VISITOR_KEY,
    VISITOR_KEY_LENGTH,
)

MAX_BODY_BYTES = 16 * 1024
SITE_LENGTH = 253
MAX_SCREEN_WIDTH = 100_000
MAX_EVENTS = 1000
# Server clocks drift; a timestamp this far ahead of ours is a mistake, not a page view.
MAX_FUTURE = timedelta(hours=24)
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)
EVENT_TYPES = ("pageview", "identify")
REFERRER_SCHEMES = ("http", "https", "android-app", "ios-app")

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def loads(raw: bytes) -> object:
    """Parse a body as strict JSON (tracker.strictjson); InvalidEvent says what is wrong."""
    try:
        return strictjson.loads(raw)
    except MalformedJson as exc:
        raise InvalidEvent(str(exc)) from None


@dataclass(slots=True)
class Beacon:
    """A validated page view or identify, before its site is looked up."""

    site: str
    event: str
    url: str | None
    referrer: str | None
    visitor: str | None
    title: str | None = None
    width: int | None = None
    email: str | None = None
    phone: str | None = None
    ts: datetime | None = None
    ip: str | None = None
    user_agent: str | None = None
    automated: bool = False


def _text(data: dict, name: str, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidEvent(f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"'{name}' must be a string.")
    return value


def check_url(value: str | None, name: str = "url", required: bool = True) -> str | None:
    """An absolute http(s) URL, trimmed and capped at URL_LENGTH characters."""
    return _address(value, name, ("http", "https"), required)


def check_referrer(value: str | None) -> str | None:
    """document.referrer: empty, an http(s) URL, or an app referrer (android-app://...)."""
    return _address(value, "referrer", REFERRER_SCHEMES, required=False)


def _address(value: str | None, name: str, schemes: tuple[str, ...], required: bool) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidEvent(f"'{name}' is required.")
        return None
    value = value.strip()
    if _CONTROL_RE.search(value):
        raise InvalidEvent(f"'{name}' must not contain control characters.")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise InvalidEvent(f"'{name}' is not a valid URL.") from None
    if parts.scheme.lower() not in schemes or not host:
        raise InvalidEvent(f"'{name}' must be an absolute http(s) URL.")
    return value[:URL_LENGTH]


def check_visitor(value: str | None, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidEvent("'visitor' is required.")
        return None
    if not isinstance(value, str):
        raise InvalidEvent("'visitor' must be a string.")
    value = value.strip()
    if not VISITOR_KEY.fullmatch(value):
        raise InvalidEvent(
            f"'visitor' must be 1 to {VISITOR_KEY_LENGTH} printable characters without spaces."
        )
    return value


def check_site(value: object) -> str:
    if value is None or value == "":
        raise InvalidEvent("'site' is required.")
    if not isinstance(value, str):
        raise InvalidEvent("'site' must be a string.")
    value = value.strip()
    if not value or len(value) > SITE_LENGTH or _CONTROL_RE.search(value):
        raise InvalidEvent("'site' is not a site id.")
    return value


def _width(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent("'width' must be a number.")
    width = int(value)
    return width if 0 < width <= MAX_SCREEN_WIDTH else None


def _identity(data: dict) -> tuple[str | None, str | None]:
    email = _text(data, "email")
    phone = _text(data, "phone")
    for name, value in (("email", email), ("phone", phone)):
        if value is not None and (len(value) > EMAIL_LENGTH or _CONTROL_RE.search(value)):
            raise InvalidEvent(f"'{name}' is not a valid {name}.")
    if email is not None:
        try:
            normalise_email(email)
        except InvalidIdentity as exc:
            raise InvalidEvent(f"'email': {exc}") from None
    return email, phone


def _event_type(data: dict, name: str) -> str:
    value = data.get(name)
    if value is None or value == "":
        return "pageview"
    if not isinstance(value, str) or value.strip().lower() not in EVENT_TYPES:
        raise InvalidEvent(f"'{name}' must be one of: {', '.join(EVENT_TYPES)}.")
    return value.strip().lower()


def parse_beacon(data: object) -> Beacon:
    """Validate a /collect body (the snippet's or any client's)."""
    if not isinstance(data, dict):
        raise InvalidEvent("The body must be a JSON object.")
    # `anonymous`: the snippet in a browser sending Global Privacy Control keeps no id; the collector
    # counts the page view with the daily-rotating anonymous visitor (as for the pixel).
    anonymous = data.get("anonymous") is True
    event = _event_type(data, "event")
    if anonymous and event == "identify":
        raise InvalidEvent("An anonymous page view cannot identify anyone.")
    return _beacon(
        data, event, visitor=None if anonymous else check_visitor(data.get("visitor")),
        automated=data.get("webdriver") is True or data.get("automated") is True,
    )


def parse_api_event(data: object) -> Beacon:
    """Validate one event of POST /api/events: a page view or identify with its own time, and the
    browser's address and User-Agent where the server has them."""
    if not isinstance(data, dict):
        raise InvalidEvent("Each event must be a JSON object.")
    event = _event_type(data, "type")
    ts = parse_timestamp(data.get("ts"))
    ip = _text(data, "ip")
    user_agent = _text(data, "user_agent")
    if ip is not None and (len(ip) > 64 or _CONTROL_RE.search(ip)):
        raise InvalidEvent("'ip' is not an IP address.")
    visitor = check_visitor(data.get("visitor"), required=False)
    if visitor is None and not (ip and user_agent):
        raise InvalidEvent("'visitor' is required (or both 'ip' and 'user_agent').")
    if event == "pageview" and user_agent is None:
        raise InvalidEvent("'user_agent' is required for a pageview (the browser's User-Agent).")
    return _beacon(data, event, visitor=visitor, ts=ts, ip=ip,
                   user_agent=user_agent[:USER_AGENT_LENGTH] if user_agent else None)


def _beacon(data: dict, event: str, **extra) -> Beacon:
    """The fields every beacon and event shares, validated once."""
    email, phone = _identity(data)
    if event == "identify" and email is None and phone is None:
        raise InvalidEvent("An identify needs 'email' or 'phone'.")
    title = _text(data, "title")
    return Beacon(
        site=check_site(data.get("site")),
        event=event,
        url=check_url(_text(data, "url"), required=event == "pageview"),
        referrer=check_referrer(_text(data, "referrer")),
        title=_CONTROL_RE.sub(" ", title)[:TITLE_LENGTH] if title else None,
        width=_width(data.get("width")),
        email=email,
        phone=phone,
        **extra,
    )


def parse_timestamp(value: object) -> datetime:
    """An ISO-8601 timestamp with an explicit offset, returned in UTC."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent("'ts' is required: an ISO-8601 timestamp with an offset.")
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidEvent(f"'ts' is not an ISO-8601 timestamp: {value[:40]!r}.") from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidEvent("'ts' needs a UTC offset (e.g. 2026-11-26T10:00:00+00:00 or ...Z).")
    ts = ts.astimezone(UTC)
    if ts < OLDEST or ts > datetime.now(UTC) + MAX_FUTURE:
        raise InvalidEvent("'ts' is out of range (before 2000 or more than a day ahead).")
    return ts
