"""The collector's gunicorn worker: page views read, validated and answered by the event loop.

gunicorn's threaded worker hands every request to a pool thread, and a page view's thread then
sleeps until its hit is committed. On two cores those hand-offs (a thread woken to read the
request, put to sleep on the commit, woken again to answer, then the loop woken to poll the
connection again) cost more CPU than the page view itself. This worker keeps gunicorn's threaded
worker for everything, except that when a connection becomes readable, the loop itself reads it;
if what arrived is exactly one complete, plain `POST /collect` of a site already in the cache, the
loop validates it, queues the hit for the process's writer and moves on. The writer commits a
group of hits and tells the loop, which then sends each 202: still only after the hit is durable.

Anything else (a partial or pipelined request, another URL or method, bad input, identify, a
chunked body, `Expect`, TLS, HTTP/2) goes to the pool exactly as it arrived, with the bytes already
read handed to gunicorn's parser, so every rule and error answer stays in one place.

A server without the collector (the fast path is looked up on the app) behaves as gunicorn's
threaded worker.
"""

from __future__ import annotations

import errno
import logging
import re
import selectors
import time
from collections import deque
from functools import partial

from gunicorn import util
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from tracker.collect.beacon import MAX_BODY_BYTES
from tracker.collect.writer import StoreUnavailable
from tracker.headers import SECURITY_HEADERS
from tracker.health import answer as health_answer

log = logging.getLogger(__name__)

# One recv: a page view is a few hundred bytes; a request larger than this goes to the pool.
READ_SIZE = 65536
MAX_HEAD_BYTES = 8190
REQUEST_LINE = b"POST /collect HTTP/1.1"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Headers that change how the request must be read or answered: the pool's parser deals with them.
_PASS_ON = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"http2-settings", b"trailer"})
_READ = {b"content-length", b"user-agent", b"dnt", b"sec-gpc", b"connection"}
# Exactly one complete `GET /healthz` (no body, nothing pipelined after it).
HEALTH_CHECK = re.compile(rb"GET /healthz HTTP/1\.[01]\r\n(?:[^\r\n]*\r\n)*?\r\n\Z")
OVERLOADED = StoreUnavailable("Too many page views are waiting for the database.")
TIMED_OUT = StoreUnavailable("The database did not answer in time.")


class CollectRequest:
    """One complete, plain `POST /collect` as read off the socket: its body and the headers the
    collector reads (the page view itself is parsed by the one door, tracker.collect.intake)."""

    __slots__ = ("body", "user_agent", "dnt", "gpc", "close")

    def __init__(self, body: bytes, user_agent: str, dnt: str | None, gpc: str | None, close: bool):
        self.body = body
        self.user_agent = user_agent
        self.dnt = dnt
        self.gpc = gpc
        self.close = close


def parse_collect_request(data: bytes) -> CollectRequest | None:
    """`data` as exactly one complete `POST /collect` HTTP/1.1 request, or None (not that, or not
    simple: whoever reads it in full decides)."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or end > MAX_HEAD_BYTES:
        return None
    lines = data[:end].split(b"\r\n")
    if lines[0] != REQUEST_LINE:
        return None
    seen: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name) or _BAD_VALUE.search(value):
            return None
        name = name.lower()
        if name in _PASS_ON:
            return None
        if name in _READ:
            if name in seen:  # repeated: the full parser joins or refuses them
                return None
            seen[name] = value.strip(b" \t")
    length = seen.get(b"content-length", b"")
    if not length.isdigit() or len(length) > 6:
        return None
    body = data[end + 4 :]
    if len(body) != int(length) or len(body) > MAX_BODY_BYTES:
        return None  # incomplete, pipelined or too large
    connection = seen.get(b"connection", b"keep-alive").lower()
    if connection not in (b"keep-alive", b"close"):
        return None
    dnt, gpc = seen.get(b"dnt"), seen.get(b"sec-gpc")
    return CollectRequest(
        body,
        seen.get(b"user-agent", b"").decode("latin-1"),
        dnt.decode("latin-1") if dnt is not None else None,
        gpc.decode("latin-1") if gpc is not None else None,
        connection == b"close",
    )


def fast_path_of(app):
    """The collector's fast path of a loaded WSGI app, if it has one."""
    extensions = getattr(app, "extensions", None)
    return extensions.get("tracker.collect.fast") if isinstance(extensions, dict) else None


class CollectorWorker(ThreadWorker):
    """gunicorn's gthread worker, whose event loop answers plain page views itself (see above)."""

    def run(self):
        self.fast = None if self.cfg.is_ssl else fast_path_of(self.wsgi)
        extensions = getattr(self.wsgi, "extensions", None)
        self.health = extensions.get("tracker.health") if self.fast is not None else None
        self.answers: deque = deque()
        self.flush_scheduled = False
        self.heads: dict[tuple[bool, bool], tuple[int, bytes, bytes]] = {}
        self.waiting: deque = deque()  # connections whose hit is queued, oldest first
        super().run()

    # --- connections the loop reads itself ---------------------------------------------------

    def accept(self, listener):
        if self.fast is None:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        if negotiation.prior_knowledge_allowed(self.cfg, client_addr):
            conn.sock.setblocking(True)
            self.enqueue_req(conn)
            return
        # Wait for the first request in the loop, as gunicorn waits for a deferred connection.
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(client_sock, selectors.EVENT_READ, partial(self.on_new_socket_readable, conn))

    def on_new_socket_readable(self, conn, client):
        self.poller.unregister(client)
        self.pending_conns.remove(conn)
        self.serve(conn)

    def on_client_socket_readable(self, conn, client):
        if self.fast is None:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.serve(conn)

    def serve(self, conn):
        """Read what the client sent; answer a plain page view here, hand anything else on."""
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return self.to_pool(conn, b"")
        except OSError:
            return self.drop(conn)
        if not data:  # the client closed its connection
            return self.drop(conn)
        if self.health is not None and HEALTH_CHECK.match(data):
            # A load balancer's check, answered from the latest database reads (tracker.health):
            # never queued behind server threads that wait on a database that hangs.
            healthy = self.health.state()
            if healthy is None:  # no read has ended yet: the app's view waits for the first
                return self.to_pool(conn, data)
            conn.fast_close = b"connection: close" in data.lower()
            close = self.closing(conn)
            return self.send(conn, self.health_response(healthy, close), close)
        view = parse_collect_request(data)
        if view is None:
            return self.to_pool(conn, data)
        try:
            hit = self.fast.hit_from(view.body, view.user_agent, view.dnt, view.gpc, cached_only=True)
        except Exception:  # never expected; the Flask path answers and reports it
            log.exception("collector fast path failed")
            hit = None
        if hit is None:
            return self.to_pool(conn, data)
        conn.fast_close = view.close
        if hit is False:  # a bot, an unknown site, Do-Not-Track: accepted, nothing stored
            return self.answer(conn, None)
        if self.fast.writer.overloaded():
            return self.answer(conn, OVERLOADED)
        # [connection, deadline (None once answered), the writer's ticket]
        waiter = [conn, time.monotonic() + self.fast.writer.wait, None]
        self.waiting.append(waiter)
        waiter[2] = self.fast.writer.submit([hit], self.deliver, waiter)

    def to_pool(self, conn, data: bytes):
        """Serve the request the way gunicorn's threaded worker does, from the bytes already read."""
        conn.init()  # plain HTTP/1.x here: creates the parser, sets the socket blocking
        if data:
            conn.parser.unreader.unread(data)
        conn.data_ready = True
        self.enqueue_req(conn)

    def drop(self, conn):
        self.nr_conns -= 1
        conn.close()

    # --- answers, once the writer has committed -----------------------------------------------

    def deliver(self, waiter, error):
        """Called on the writer thread: queue the answer and wake the loop (once per batch)."""
        self.answers.append((waiter, error))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.method_queue.defer(self.flush_answers)

    def flush_answers(self):
        self.flush_scheduled = False  # before draining: a later delivery schedules another flush
        answers = self.answers
        while answers:
            waiter, error = answers.popleft()
            if waiter[1] is None:  # already answered 503 for taking too long
                continue
            waiter[1] = None
            self.answer(waiter[0], error)

    def murder_keepalived(self, force=False):
        """Also answer 503 (and close) where the database has not committed in the writer's wait;
        a hit the writer has not taken yet is never stored, one in a batch under way may be, but
        the client is told nothing was acknowledged."""
        super().murder_keepalived(force)
        now = time.monotonic()
        waiting = self.waiting if self.fast is not None else ()
        while waiting and (waiting[0][1] is None or waiting[0][1] <= now):
            waiter = waiting.popleft()
            if waiter[1] is not None:
                waiter[1] = None
                waiter[2].abandoned = True
                log.warning("collector: no commit within %s s; answered 503", self.fast.writer.wait)
                waiter[0].fast_close = True
                self.answer(waiter[0], TIMED_OUT)

    def answer(self, conn, error):
        close = self.closing(conn)
        self.send(conn, self.response(error is None, close), close)

    def closing(self, conn) -> bool:
        """Whether the connection closes after this answer (asked, stopping, or keep-alive full)."""
        return conn.fast_close or not self.alive or len(self.keepalived_conns) >= self.max_keepalived

    def send(self, conn, response: bytes, close: bool):
        try:
            sent = conn.sock.send(response)
        except OSError:
            sent = -1
        if sent != len(response):  # gone, or not reading its answers: nothing more to say
            return self.drop(conn)
        if close:
            return self.drop(conn)
        conn.set_timeout()
        self.keepalived_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))

    def health_response(self, healthy: bool, close: bool) -> bytes:
        status, body = health_answer(healthy)
        payload = (body + "\n").encode()
        lines = [
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Service Unavailable'}",
            f"Date: {util.http_date(int(time.time()))}",
            f"Connection: {'close' if close else 'keep-alive'}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload

    def response(self, ok: bool, close: bool) -> bytes:
        """The fast path's 202 (or 503), with the headers its WSGI answer would carry."""
        now = int(time.time())
        cached = self.heads.get((ok, close))
        if cached is not None and cached[0] == now:
            return cached[1] + cached[2]
        if ok:
            status, headers, body = "202 Accepted", self.fast.accepted, b""
        else:
            status, headers = "503 Service Unavailable", self.fast.unavailable
            body = self.fast.unavailable_body
        lines = [
            f"HTTP/1.1 {status}",
            f"Date: {util.http_date(now)}",
            f"Connection: {'close' if close else 'keep-alive'}",
            *(f"{name}: {value}" for name, value in headers),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.heads[(ok, close)] = (now, head, body)
        return head + body
