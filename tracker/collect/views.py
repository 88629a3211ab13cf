"""HTTP edges of the collector: POST /collect, GET /collect.gif and POST /api/events."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from tracker.access import caller
from tracker.auth import AUTH_REQUIRED, BEARER_REALM, bearer_token
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
from tracker.collect.intake import admit, opted_out
from tracker.collect.known_sites import KnownSites
from tracker.collect.writer import Hit, StoreUnavailable, Writer
from tracker.db import get_engine

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
    writer = app.extensions["tracker.collect.writer"] = Writer(engine, app.config["TRACKER"].waits.collect)
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


def _secret_key() -> str:
    return current_app.config["TRACKER"].secret_key


def _opted_out() -> bool:
    return opted_out(request.headers.get("DNT"), request.headers.get("Sec-GPC"))


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
    try:
        hit = admit(beacon, _sites().get(beacon.site), request.headers.get("User-Agent", ""),
                    opted_out=_opted_out(), secret_key=_secret_key(), ip=request.remote_addr)
    except InvalidEvent as exc:
        return _error(str(exc))
    if hit is None:
        return _accepted()
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
        beacon = Beacon(
            site=check_site(args.get("site")),
            event="pageview",
            # Without a url parameter the embedding page itself (the Referer header) is the page.
            url=check_url(args.get("url") or request.headers.get("Referer")),
            referrer=check_referrer(args.get("referrer") or args.get("ref")),
            visitor=None,  # no storage without JavaScript: the anonymous daily visitor
        )
    except InvalidEvent as exc:
        response = _error(str(exc))
        response.headers["Cache-Control"] = NO_STORE
        return response
    hit = admit(beacon, _sites().get(beacon.site), request.headers.get("User-Agent", ""),
                opted_out=_opted_out(), secret_key=_secret_key(), ip=request.remote_addr)
    if hit is None:
        return _pixel()
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
    secret = _secret_key()
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
    # A site the token may not see is answered exactly like one that does not exist.
    if site is None or not caller().allows(site.id):
        raise InvalidEvent(f"Unknown site {beacon.site!r}.")
    # A server's events carry no Do-Not-Track: the store decided when it sent them.
    return admit(beacon, site, beacon.user_agent, secret_key=secret, ip=beacon.ip)
