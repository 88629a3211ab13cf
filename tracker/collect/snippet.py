"""GET /t.js: the built tracking snippet (js/dist/t.js), cacheable and revalidated by ETag."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, request

SNIPPET_PATH = Path(__file__).resolve().parents[2] / "js" / "dist" / "t.js"
# The URL carries no version, so browsers keep it a day, then revalidate (a 304 by ETag)
# while serving the cached copy for up to a week.
CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"

bp = Blueprint("snippet", __name__)


class Snippet:
    """The snippet's bytes and their ETag, read once when the app starts."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.etag = hashlib.sha256(body).hexdigest()[:20]

    @classmethod
    def load(cls, path: Path = SNIPPET_PATH) -> Snippet | None:
        try:
            return cls(path.read_bytes())
        except FileNotFoundError:
            return None


def init_app(app: Flask) -> None:
    app.extensions["tracker.snippet"] = Snippet.load()
    app.register_blueprint(bp)


@bp.get("/t.js")
def snippet() -> Response:
    built: Snippet | None = current_app.extensions["tracker.snippet"]
    if built is None:
        abort(404, "The snippet is not built: run `node js/build.mjs`.")
    response = Response(built.body, mimetype="text/javascript")
    response.headers["Cache-Control"] = CACHE_CONTROL
    # Lets pages load it with crossorigin/SRI; the body is public anyway.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.set_etag(built.etag)
    return response.make_conditional(request)
