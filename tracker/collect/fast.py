"""The hot path: a well-formed POST /collect page view answered by a plain WSGI function.

Flask's request context, session cookie, URL routing and response hooks cost more than parsing,
validating and storing a page view. Everything else (bad input, identify, preflight, the pixel,
every other URL) goes on to the Flask app, with the body handed over unread, so its answers and
rules stay in one place: `views.py`.
"""

from __future__ import annotations

import io
import json
import logging

from sqlalchemy.exc import SQLAlchemyError

from tracker.collect.beacon import MAX_BODY_BYTES, InvalidEvent, loads, parse_beacon
from tracker.collect.hits import Hit
from tracker.collect.intake import admit, opted_out
from tracker.collect.known_sites import KnownSites
from tracker.collect.writer import StoreUnavailable, Writer
from tracker.headers import SECURITY_HEADERS

log = logging.getLogger(__name__)


def _headers(extra: dict[str, str]) -> list[tuple[str, str]]:
    return [*extra.items(), ("Access-Control-Allow-Origin", "*"), *SECURITY_HEADERS.items()]


class CollectFastPath:
    """WSGI middleware in front of the Flask app for the one request that arrives by the thousand."""

    def __init__(self, wsgi_app, writer: Writer, sites: KnownSites):
        self.wsgi_app = wsgi_app
        self.writer = writer
        self.sites = sites
        self.accepted = _headers({"Content-Type": "text/html; charset=utf-8", "Content-Length": "0"})
        body = json.dumps({"error": "The collector cannot store events right now; retry later."})
        self.unavailable_body = body.encode() + b"\n"
        self.unavailable = _headers(
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(self.unavailable_body)),
                "Retry-After": "5",
            }
        )

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/collect" or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        self.writer.arrive()
        hit = None
        try:
            hit = self._hit(environ)
        except SQLAlchemyError as exc:  # the site lookup cannot reach the database
            log.warning("collector site lookup failed: %s", exc)
            return self._unavailable(start_response)
        finally:
            if not hit:  # nothing to store (or an exception): no longer in flight for the writer
                self.writer.drop()
        if hit is False:
            return self._accepted(start_response)
        if hit is None:  # the 400s and 413s, identify: answered by views
            return self.wsgi_app(environ, start_response)
        try:
            self.writer.store([hit], counted=True)
        except StoreUnavailable as exc:
            log.warning("collector store failed: %s", exc.__cause__ or exc)
            return self._unavailable(start_response)
        return self._accepted(start_response)

    def _unavailable(self, start_response):
        start_response("503 SERVICE UNAVAILABLE", list(self.unavailable))
        return [self.unavailable_body]

    def _hit(self, environ) -> Hit | bool | None:
        """The page view to store; False: accepted and not stored; None: for the Flask app."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return None
        if not 0 <= length <= MAX_BODY_BYTES:  # too large, or chunked: Flask's checks answer
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        if len(body) != length:
            return None
        return self.hit_from(
            body, environ.get("HTTP_USER_AGENT", ""), environ.get("HTTP_DNT"), environ.get("HTTP_SEC_GPC")
        )

    def hit_from(
        self, body: bytes, user_agent: str, dnt: str | None, gpc: str | None, cached_only: bool = False
    ) -> Hit | bool | None:
        """`_hit` for a body already read. With `cached_only`, a site not in the cache gives None
        (the caller must not wait on the database: the Flask path looks it up)."""
        try:
            beacon = parse_beacon(loads(body))
        except InvalidEvent:
            return None
        if beacon.email or beacon.phone or beacon.visitor is None:
            return None  # identify (hashed and linked), or anonymous (needs the address): in views
        if cached_only:
            known, site = self.sites.cached(beacon.site)
            if not known:
                return None
        else:
            site = self.sites.get(beacon.site)
        return admit(beacon, site, user_agent, opted_out=opted_out(dnt, gpc)) or False

    def _accepted(self, start_response):
        start_response("202 ACCEPTED", list(self.accepted))
        return []
