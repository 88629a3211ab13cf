"""HTTP edges of the collector: POST /collect, GET /collect.gif and POST /api/events."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from tracker.auth import AUTH_REQUIRED, BEARER_REALM, bearer_token
from tracker.collect.agents import parse_agent
from tracker.collect.anonymous import anonymous_visitor
from tracker.collect.beacon import (
    MAX_BODY_BYTES,
    MAX_EVENTS,
    Beacon,
    InvalidEvent,
    check_referrer,
    check_site,
    check_url,
    loads,
    parse_api_event,
    parse_beacon,
)
from tracker.collect.fast import CollectFastPath
from tracker.collect.known_sites import KnownSites, SiteInfo
from tracker.collect.writer import Hit, StoreUnavailable, Writer
from tracker.db import get_engine, utcnow
from tracker.identity import InvalidIdentity, identity_hash, normalise_email, normalise_phone
from tracker.limits import USER_AGENT_LENGTH

bp = Blueprint("collect", __name__)

# 1x1 transparent GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0"


def init_app(app: Flask) -> None:
    engine = get_engine(app)
    writer = app.extensions["tracker.collect.writer"] = Writer(engine)
    sites = app.extensions["tracker.collect.sites"] = KnownSites(engine)
    app.register_blueprint(bp)
    app.after_request(_cors)
    fast = app.extensions["tracker.collect.fast"] = CollectFastPath(app.wsgi_app, writer, sites)
    app.wsgi_app = fast


def _writer() -> Writer:
    return current_app.extensions["tracker.collect.writer"]


def _sites() -> KnownSites:
    return current_app.extensions["tracker.collect.sites"]


def _cors(response: Response) -> Response:
    # Browsers post cross-origin from every store; no credentials are ever involved.
    if request.path.startswith("/collect"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _error(message: str, status: int = 400) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _accepted() -> Response:
    return Response(status=202)


def _read_body() -> bytes:
    """The body, at most MAX_BODY_BYTES: checked against Content-Length and the bytes really sent."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        abort(413)
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        abort(413)
    return body


def _identities(beacon: Beacon, site: SiteInfo) -> tuple[tuple[str, str], ...]:
    secret = current_app.config["TRACKER"].secret_key
    found = []
    if beacon.email:
        found.append(("email", identity_hash(secret, "email", normalise_email(beacon.email))))
    if beacon.phone:
        try:
            phone = normalise_phone(beacon.phone, site.phone_region)
        except InvalidIdentity as exc:
            raise InvalidEvent(f"'phone': {exc}") from None
        found.append(("phone", identity_hash(secret, "phone", phone)))
    return tuple(found)


def _opted_out(site: SiteInfo) -> bool:
    return site.respect_dnt and (request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1")


def _store(hits: list[Hit]) -> Response | None:
    try:
        _writer().store(hits)
    except StoreUnavailable as exc:
        current_app.logger.warning("collector store failed: %s", exc.__cause__ or exc)
        response = _error("The collector cannot store events right now; retry later.", 503)
        response.headers["Retry-After"] = "5"
        return response
    return None


@bp.route("/collect", methods=["OPTIONS"])
@bp.route("/collect.gif", methods=["OPTIONS"])
def preflight():
    return Response(status=204, headers=CORS_HEADERS)


@bp.route("/collect", methods=["POST"])
def collect():
    try:
        beacon = parse_beacon(loads(_read_body()))
    except InvalidEvent as exc:
        return _error(str(exc))
    agent = parse_agent(request.headers.get("User-Agent", "")[:USER_AGENT_LENGTH])
    if agent.is_bot or beacon.automated:
        return _accepted()
    site = _sites().get(beacon.site)
    if site is None or _opted_out(site):
        return _accepted()
    try:
        identities = _identities(beacon, site)
    except InvalidEvent as exc:
        return _error(str(exc))
    hit = Hit(
        site_id=site.id,
        site_host=site.host,
        visitor_key=beacon.visitor,
        ts=utcnow(),
        pageview=beacon.event == "pageview",
        url=beacon.url,
        referrer=beacon.referrer,
        title=beacon.title,
        width=beacon.width,
        device_type=agent.device_type,
        browser=agent.browser,
        os=agent.os,
        identities=identities,
    )
    return _store([hit]) or _accepted()


def _pixel(status: int = 200) -> Response:
    response = Response(PIXEL, status=status, mimetype="image/gif")
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Pragma"] = "no-cache"
    response.headers["Expires"] = "0"
    return response


@bp.route("/collect.gif", methods=["GET"])
def pixel():
    """<noscript> page views; the visitor is a daily-rotating hash (no storage without JavaScript)."""
    args = request.args
    try:
        site_ref = check_site(args.get("site"))
        # Without a url parameter the embedding page itself (the Referer header) is the page.
        url = check_url(args.get("url") or request.headers.get("Referer"))
        referrer = check_referrer(args.get("referrer") or args.get("ref"))
    except InvalidEvent as exc:
        response = _error(str(exc))
        response.headers["Cache-Control"] = NO_STORE
        return response
    user_agent = request.headers.get("User-Agent", "")[:USER_AGENT_LENGTH]
    agent = parse_agent(user_agent)
    site = _sites().get(site_ref)
    if agent.is_bot or site is None or _opted_out(site):
        return _pixel()
    now = utcnow()
    hit = Hit(
        site_id=site.id,
        site_host=site.host,
        visitor_key=anonymous_visitor(
            current_app.config["TRACKER"].secret_key, site.id, now.date(), user_agent, request.remote_addr
        ),
        ts=now,
        url=url,
        referrer=referrer,
        device_type=agent.device_type,
        browser=agent.browser,
        os=agent.os,
    )
    failed = _store([hit])
    if failed is not None:
        failed.headers["Cache-Control"] = NO_STORE
        return failed
    return _pixel()


@bp.route("/api/events", methods=["POST"])
def events():
    if bearer_token() is None:
        response = _error(AUTH_REQUIRED, 401)
        response.headers["WWW-Authenticate"] = BEARER_REALM
        return response
    try:
        data = loads(request.get_data(cache=False))
    except InvalidEvent as exc:
        return _error(str(exc))
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        return _error('The body must be a JSON object {"events": [...]}.')
    items = data["events"]
    if len(items) > MAX_EVENTS:
        return _error(f"Send at most {MAX_EVENTS} events per request.", 413)
    secret = current_app.config["TRACKER"].secret_key
    hits: list[Hit] = []
    rejected: list[dict] = []
    accepted = 0
    for index, item in enumerate(items):
        try:
            hit = _api_hit(item, secret)
        except InvalidEvent as exc:
            rejected.append({"index": index, "error": str(exc)})
            continue
        accepted += 1
        if hit is not None:
            hits.append(hit)
    failed = _store(hits)
    if failed is not None:
        return failed
    response = jsonify(accepted=accepted, rejected=rejected)
    response.status_code = 202
    return response


def _api_hit(item: object, secret: str) -> Hit | None:
    """A stored hit for one API event; None when it is accepted but not stored (a bot)."""
    beacon = parse_api_event(item)
    site = _sites().get(beacon.site)
    if site is None:
        raise InvalidEvent(f"Unknown site {beacon.site!r}.")
    user_agent = beacon.user_agent or ""
    agent = parse_agent(user_agent) if user_agent else None
    if agent is not None and agent.is_bot:
        return None
    visitor = beacon.visitor or anonymous_visitor(secret, site.id, beacon.ts.date(), user_agent, beacon.ip)
    return Hit(
        site_id=site.id,
        site_host=site.host,
        visitor_key=visitor,
        ts=beacon.ts,
        pageview=beacon.event == "pageview",
        url=beacon.url,
        referrer=beacon.referrer,
        title=beacon.title,
        width=beacon.width,
        device_type=agent.device_type if agent else None,
        browser=agent.browser if agent else None,
        os=agent.os if agent else None,
        identities=_identities(beacon, site),
    )
