"""Every malformed /collect body gets a clear 400 (or 413) JSON error, never a 500, and stores nothing."""

import json

import pytest
from sqlalchemy import func, select

from tracker.collect.beacon import MAX_BODY_BYTES, InvalidEvent, loads, parse_beacon
from tracker.models import Pageview

UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Safari/605.1.15"
)
GOOD = {"site": "abc", "url": "https://shop.example/", "referrer": "", "visitor": "v-1", "event": "pageview"}


def with_(**changes):
    body = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body).encode()


BAD_BODIES = [
    (b"", "empty"),
    (b"{", "not valid JSON"),
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"a string"', "JSON object"),
    (b"null", "JSON object"),
    (b'{"site": NaN, "url": "https://a.example/", "visitor": "v"}', "NaN"),
    (b'{"site": "a", "width": Infinity, "url": "https://a.example/", "visitor": "v"}', "Infinity"),
    (b'{"site": "a", "site": "b", "url": "https://a.example/", "visitor": "v"}', "twice"),
    (b'{"site": "a\\u0000", "url": "https://a.example/", "visitor": "v"}', "NUL"),
    (b'{"site": "a", "url": "https://a.example/\\ud800", "visitor": "v"}', "surrogate"),
    (b'{"site": "a", "url": "https://a.example/", "visitor": "\\udc00x"}', "surrogate"),
    (b"\xff\xfe{}", "UTF-8"),
    (with_(url="javascript:alert(1)"), "http(s)"),
    (with_(url="file:///etc/passwd"), "http(s)"),
    (with_(url="/relative/path"), "http(s)"),
    (with_(url="https://"), "http(s)"),
    (with_(url=...), "required"),
    (with_(site=...), "required"),
    (with_(visitor=...), "required"),
    (with_(visitor="has space"), "visitor"),
    (with_(visitor="x" * 65), "visitor"),
    (with_(site=123), "string"),
    (with_(url=["https://a.example/"]), "string"),
    (with_(referrer=5), "string"),
    (with_(referrer="ftp://files.example/"), "referrer"),
    (with_(width="wide"), "number"),
    (with_(width=True), "number"),
    (with_(title={"a": 1}), "string"),
    (with_(event="purchase"), "event"),
    (with_(anonymous=True, event="identify", email="ann@example.com"), "anonymous"),
    (with_(url="https://a.example/\nx"), "control"),
]


@pytest.mark.parametrize(("raw", "fragment"), BAD_BODIES)
def test_parsing_rejects(raw, fragment):
    with pytest.raises(InvalidEvent, match="(?i)" + fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_beacon(loads(raw))


@pytest.mark.parametrize(("raw", "fragment"), BAD_BODIES)
def test_endpoint_answers_400_json(client, session, site, raw, fragment):
    raw = raw.replace(b'"abc"', f'"{site.public_id}"'.encode())
    response = client.post("/collect", data=raw, headers={"User-Agent": UA, "Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.is_json and response.get_json()["error"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert session.scalar(select(func.count()).select_from(Pageview)) == 0


def test_over_16_kib_is_413(client, site):
    body = with_(site=site.public_id, title="x" * MAX_BODY_BYTES)
    response = client.post("/collect", data=body, headers={"User-Agent": UA})
    assert response.status_code == 413
    assert response.get_json()["error"]


def test_over_16_kib_without_content_length_is_413(client, site):
    body = with_(site=site.public_id, title="x" * MAX_BODY_BYTES)
    response = client.post(
        "/collect",
        input_stream=__import__("io").BytesIO(body),
        headers={"User-Agent": UA, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_exactly_at_the_limit_is_fine(client, site):
    body = with_(site=site.public_id, title="")
    body = body[:-1] + b', "pad": "' + b"x" * (MAX_BODY_BYTES - len(body) - 11) + b'"}'
    assert len(body) == MAX_BODY_BYTES
    response = client.post("/collect", data=body, headers={"User-Agent": UA})
    assert response.status_code == 202


def test_long_fields_are_capped_not_rejected(client, session, site):
    url = "https://shop.example/?utm_source=attentive&utm_medium=sms&q=" + "x" * 3000
    response = client.post(
        "/collect",
        data=with_(
            site=site.public_id, url=url, referrer="https://blog.example/" + "y" * 3000, title="t" * 900
        ),
        headers={"User-Agent": UA + " " + "z" * 1000},
    )
    assert response.status_code == 202
    view = session.scalar(select(Pageview))
    assert len(view.url) == 2000 and len(view.referrer) == 2000 and len(view.title) == 512


@pytest.mark.parametrize(
    "extra",
    [{"width": 1280.0}, {"width": -5}, {"title": None}, {"referrer": None}, {"unknown_field": [1, 2]}],
)
def test_lenient_values_are_accepted(client, site, extra):
    response = client.post("/collect", data=with_(site=site.public_id, **extra), headers={"User-Agent": UA})
    assert response.status_code == 202


def test_android_app_referrer_is_accepted(client, site):
    body = with_(site=site.public_id, referrer="android-app://com.google.android.gm/")
    assert client.post("/collect", data=body, headers={"User-Agent": UA}).status_code == 202


def test_get_on_collect_is_not_allowed(client):
    response = client.get("/collect")
    assert response.status_code == 405
    assert response.is_json
