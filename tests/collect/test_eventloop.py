"""The server's own worker: page views answered by its event loop, everything else as gunicorn does.

The served tests run `tracker serve`'s gunicorn (one worker) against the test database and speak
raw HTTP/1.1 to it, the way browsers and proxies do: keep-alive, pipelining, split packets.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from sqlalchemy import func, select

from tracker.collect.eventloop import parse_collect_request
from tracker.collect.writer import drain
from tracker.db import get_engine
from tracker.models import Pageview, TrackedSession

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


def request(body: bytes, *headers: str, line: str = "POST /collect HTTP/1.1", length: bool = True) -> bytes:
    head = [line, "Host: collector.example", "Content-Type: text/plain;charset=UTF-8", *headers]
    if length:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


BODY = b'{"site":"S","url":"https://shop.example/","visitor":"v1","event":"pageview"}'


# --- which requests the loop answers itself -----------------------------------------------------


def test_a_plain_page_view_is_read_with_what_the_collector_needs():
    view = parse_collect_request(request(BODY, f"User-Agent: {PHONE}", "DNT: 1", "sec-gpc: 1"))
    assert view is not None
    assert (view.body, view.user_agent, view.dnt, view.gpc, view.close) == (BODY, PHONE, "1", "1", False)
    assert parse_collect_request(request(BODY, "Connection: close")).close is True
    assert parse_collect_request(request(BODY, "connection: Keep-Alive")).close is False
    # Header values are ISO-8859-1 on the wire, as WSGI hands them to the app.
    assert parse_collect_request(request(BODY, "User-Agent: Caf\xe9")).user_agent == "Caf\xe9"
    assert parse_collect_request(request(b"")).body == b""


@pytest.mark.parametrize(
    "data",
    [
        request(BODY)[:-1],  # the body is still arriving
        request(BODY)[:40],  # so are the headers
        request(BODY) + request(BODY),  # pipelined: the full parser takes both
        request(BODY, line="POST /collect HTTP/1.0"),
        request(BODY, line="POST /collect?x=1 HTTP/1.1"),
        request(BODY, line="GET /collect HTTP/1.1"),
        request(BODY, line="OPTIONS /collect HTTP/1.1"),
        request(BODY, line="POST /api/events HTTP/1.1"),
        request(b"4\r\nabcd\r\n0\r\n\r\n", "Transfer-Encoding: chunked", length=False),
        request(BODY, length=False),
        request(BODY, "Expect: 100-continue"),
        request(BODY, "Upgrade: h2c", "Connection: Upgrade"),
        request(BODY, f"Content-Length: {len(BODY)}"),  # twice
        request(BODY, "User-Agent: a", "User-Agent: b"),
        request(BODY, "Bad Header: x"),
        request(BODY, "X-Control: a\x01b"),
        request(BODY, "no colon here"),
        request(b"{" + b" " * 16_400 + b"}"),  # over the body limit: 413 from the app
        request(BODY, "X-Big: " + "a" * 9000),
        b"\r\n\r\n",
        b"",
    ],
)
def test_anything_less_plain_goes_to_the_full_parser(data):
    assert parse_collect_request(data) is None


# --- the served worker --------------------------------------------------------------------------


@pytest.fixture
def served(served_app, site) -> int:
    """The port of `tracker serve`'s gunicorn, once the site exists."""
    return int(served_app.rsplit(":", 1)[1])


class Client:
    """One keep-alive connection, reading responses by their Content-Length."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._read()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        return self.sock.recv(1) == b""

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def page_view(site, visitor: str, url: str) -> bytes:
    body = json.dumps({"site": site.public_id, "url": url, "visitor": visitor, "event": "pageview",
                       "referrer": "", "title": "Hoodie", "width": 390})
    return request(body.encode(), f"User-Agent: {PHONE}", "Origin: https://shop.example")


def stored(app) -> tuple[int, list[tuple]]:
    engine = get_engine(app)
    drain(engine)
    with engine.connect() as conn:
        views = conn.scalar(select(func.count()).select_from(Pageview))
        sessions = conn.execute(
            select(TrackedSession.utm_source, TrackedSession.utm_medium, TrackedSession.utm_campaign)
            .order_by(TrackedSession.id)
        ).all()
    return views, [tuple(s) for s in sessions]


def test_page_views_over_one_connection_are_answered_after_they_are_stored(served, app, site):
    landing = "https://shop.example/?utm_source=Attentive&utm_medium=SMS&utm_campaign=Black%20Friday"
    client = Client(served)
    # The first of a site is looked up by the full path; the next ones are answered by the loop.
    for n in range(4):
        client.send(page_view(site, "visitor-a", landing if n == 0 else f"https://shop.example/p/{n}"))
        status, headers, body = client.response()
        assert (status, body) == (202, b"")
        assert headers["access-control-allow-origin"] == "*"
        assert headers["connection"] == "keep-alive"
        assert headers["x-content-type-options"] == "nosniff"
    # Pipelined: both answered, in order.
    client.send(page_view(site, "visitor-a", "https://shop.example/p/5")
                + page_view(site, "visitor-a", "https://shop.example/p/6"))
    assert [client.response()[0] for _ in range(2)] == [202, 202]
    # Headers and body in separate packets.
    data = page_view(site, "visitor-a", "https://shop.example/p/7")
    client.send(data[:60])
    time.sleep(0.2)
    client.send(data[60:])
    assert client.response()[0] == 202
    client.close()

    views, sessions = stored(app)
    assert views == 7
    assert sessions == [("attentive", "sms", "black friday")]


def test_other_requests_on_the_same_connection_are_answered_as_before(served, app, site):
    client = Client(served)
    client.send(page_view(site, "visitor-b", "https://shop.example/"))
    assert client.response()[0] == 202

    client.send(request(b'{"site": "x", "url": ', f"User-Agent: {PHONE}"))
    status, headers, body = client.response()
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert "error" in json.loads(body)

    client.send(request(BODY.replace(b'"S"', b'"%s"' % site.public_id.encode()),
                        "User-Agent: python-requests/2.32.3"))
    assert client.response()[0] == 202  # a bot: accepted, not stored

    client.send(b"GET /healthz HTTP/1.1\r\nHost: collector.example\r\n\r\n")
    assert client.response()[0] == 200

    chunked = json.dumps({"site": site.public_id, "url": "https://shop.example/chunked",
                          "visitor": "visitor-b", "event": "pageview"}).encode()
    client.send(request(f"{len(chunked):x}\r\n".encode() + chunked + b"\r\n0\r\n\r\n",
                        f"User-Agent: {PHONE}", "Transfer-Encoding: chunked", length=False))
    assert client.response()[0] == 202

    client.send(page_view(site, "visitor-b", "https://shop.example/last"))
    assert client.response()[0] == 202
    client.close()

    closing = Client(served)
    closing.send(page_view(site, "visitor-c", "https://shop.example/").replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
    status, headers, _ = closing.response()
    assert (status, headers["connection"]) == (202, "close")
    assert closing.closed()
    closing.close()

    views, _ = stored(app)
    assert views == 4  # the bot and the malformed body stored nothing


def test_a_page_view_the_database_refuses_gets_503_not_202(served, app, site):
    from sqlalchemy import text

    client = Client(served)
    client.send(page_view(site, "visitor-d", "https://shop.example/"))
    assert client.response()[0] == 202  # the site is now known to the loop
    engine = get_engine(app)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE pageviews RENAME TO pageviews_away"))
        conn.execute(text("ALTER TABLE hits RENAME TO hits_away"))
    try:
        client.send(page_view(site, "visitor-d", "https://shop.example/next"))
        status, headers, body = client.response()
        assert status == 503
        assert json.loads(body)["error"]
        assert headers["retry-after"] == "5"
        assert headers["access-control-allow-origin"] == "*"
        # The connection stays usable once the database takes writes again.
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE pageviews_away RENAME TO pageviews"))
            conn.execute(text("ALTER TABLE hits_away RENAME TO hits"))
    client.send(page_view(site, "visitor-d", "https://shop.example/again"))
    assert client.response()[0] == 202
    client.close()
    views, _ = stored(app)
    assert views == 2
