"""The durable write path: request threads (and the server's event loop) hand hits to one writer
thread per process, which commits them in groups and wakes each request (or tells the loop) only
once its hits are committed.

Adaptive acknowledgement. At low load (one request in flight) a page view is sessionised before
its 202, so whoever posts and then reads `sessions` sees it. Under load the writer appends the
batch to the raw `hits` table in one statement, commits, answers, and sessionises the waiting hits
in large batches when requests pause (or when this process's backlog grows past BACKLOG_LIMIT).
Hits left by a killed process are claimed by any live writer when it starts or goes idle.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque

from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from tracker.collect.hits import Hit
from tracker.collect.sessionise import Appender, drain, sessionise_backlog, write
from tracker.config import Waits
from tracker.errors import StoreUnavailable
from tracker.waits import remaining, within

__all__ = ["Hit", "StoreUnavailable", "Writer", "drain"]

log = logging.getLogger(__name__)

# Hits per group commit; under load batches grow towards this, which is what amortises commits.
BATCH_LIMIT = 2000
# Under load, how long the writer waits for page views already being parsed to join its batch:
# a commit costs a round trip (and on PostgreSQL a WAL flush) whether it carries one hit or ten.
GATHER_DELAY = 0.001
# Requests pausing this long count as idle: time to sessionise waiting hits (long enough that a
# worker left with few clients during a burst does not take CPU from one still serving many).
IDLE_SESSIONISE = 1.0
# Hits sessionised per transaction by a writer between requests: small enough that requests
# arriving meanwhile (and, on SQLite, other processes waiting for the write lock) wait briefly.
IDLE_CHUNK = 1000
# A writer thread with nothing to do (and nothing waiting in `hits`) exits; the next hit starts one.
IDLE_EXIT = 5.0
# Load within this many seconds means the next lone request is acknowledged on the raw append too.
BUSY_MEMORY = 1.0
# Hits this process appended but has not sessionised; past this it sessionises even under load.
BACKLOG_LIMIT = 100_000
# A writer busy for this long looks in `hits` for other processes' leftovers at its next pause.
LEFTOVER_CHECK = 60.0
RETRIES = 4
# Requests waiting for a commit in one process beyond which new page views get a 503 at once
# (an event loop accepts faster than a slow or absent database commits).
MAX_QUEUED = 20_000


class _Ticket:
    __slots__ = ("hits", "done", "error", "counted", "callback", "token", "abandoned")

    def __init__(self, hits: list[Hit], counted: bool, callback=None, token=None):
        self.hits = hits
        self.error: BaseException | None = None
        self.counted = counted
        # Its request was answered 503 before the writer took it: not to be stored any more.
        self.abandoned = False
        # Either a callback (the server's event loop answers when told) or a bare lock, the
        # cheapest thing a request thread can sleep on until the writer releases it.
        self.callback = callback
        self.token = token
        if callback is None:
            self.done = threading.Lock()
            self.done.acquire()

    def release(self) -> None:
        if self.callback is None:
            self.done.release()
        else:
            self.callback(self.token, self.error)


class Writer:
    """Group commit: one transaction per batch of whatever hits queued while the last one committed."""

    def __init__(self, engine: Engine, wait: float = Waits.collect):
        self.engine = engine
        # How long a page view waits for its commit before its 503 (nothing acknowledged), and
        # how long one batch may wait on the database.
        self.wait = wait
        self._queue: deque[_Ticket] = deque()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._busy_at = 0.0
        self._backlog = 0
        self._closing = False
        # Queue length that wakes the writer: 1 when idle, more while it gathers a batch.
        self._target = 1
        # Page views in flight (arrived, not yet answered): what a gathering writer waits for.
        # Counters, not a shared `+= 1`, so request threads need no lock to keep them.
        self._arrivals = itertools.count(1)
        self._dropouts = itertools.count(1)
        self._arrived = self._dropped = self._released = self._last_batch = 0

    def arrive(self) -> None:
        """A page view request started; it will call `store(..., counted=True)` or `drop()`."""
        self._arrived = next(self._arrivals)

    def drop(self) -> None:
        """A counted request ended without storing (a bot, an unknown site, bad input)."""
        self._dropped = next(self._dropouts)

    def store(self, hits: list[Hit], counted: bool = False) -> None:
        """Return once every hit is committed (within the request's time left, else `wait`);
        raise StoreUnavailable otherwise."""
        if not hits:
            if counted:
                self.drop()
            return
        ticket = _Ticket(hits, counted)
        self._enqueue(ticket)
        left = remaining()
        if not ticket.done.acquire(timeout=self.wait if left is None else left):
            ticket.abandoned = True
            raise StoreUnavailable("The database did not answer in time.")
        if ticket.error is not None:
            raise StoreUnavailable("The database refused the write.") from ticket.error

    def submit(self, hits: list[Hit], callback, token) -> _Ticket:
        """Queue hits without waiting: `callback(token, error)` runs on the writer thread once they
        are committed (error None) or refused. For an event loop that answers requests itself
        (and sets the ticket's `abandoned` when it answers 503 first)."""
        ticket = _Ticket(hits, False, callback, token)
        self._enqueue(ticket)
        return ticket

    def _enqueue(self, ticket: _Ticket) -> None:
        with self._lock:
            self._queue.append(ticket)
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()  # in a forked child the parent's thread does not exist
                self._backlog = 0
                self._thread = threading.Thread(target=self._run, name="tracker-writer", daemon=True)
                self._thread.start()
            elif len(self._queue) >= self._target:
                self._wakeup.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, give the connection back and stop the thread (waiting hits stay
        in `hits` for any writer to claim)."""
        with self._lock:
            self._closing = True
            thread = self._thread
            self._wakeup.notify()
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            self._closing = False

    def _run(self) -> None:
        # Before its first batch, claim hits that any process left behind: a killed worker's, or
        # this host's before a restart. Then again whenever this process goes idle with hits of
        # its own waiting, or has not looked for LEFTOVER_CHECK seconds.
        waiting = self._sessionise() >= IDLE_CHUNK
        checked = time.monotonic()
        appender = Appender(self.engine)
        while True:
            with self._lock:
                if not self._queue and not self._closing:
                    self._wakeup.wait(IDLE_SESSIONISE if waiting else IDLE_EXIT)
                if not self._queue:
                    if not waiting or self._closing:
                        self._thread = None
                        appender.release()
                        return
                    tickets = None
                else:
                    now = time.monotonic()
                    busy = now - self._busy_at < BUSY_MEMORY
                    if busy:
                        self._gather(now + GATHER_DELAY)
                    tickets = []
                    count = 0
                    while self._queue and count < BATCH_LIMIT:
                        ticket = self._queue.popleft()
                        if ticket.abandoned:  # answered 503 already: store nothing
                            self._released += ticket.counted
                            continue
                        tickets.append(ticket)
                        count += len(ticket.hits)
                    # Busy: more than one page view at a time (batched, queued, or still being
                    # parsed), even when each commit is quick enough to carry just one.
                    in_flight = self._arrived - self._dropped - self._released
                    if len(tickets) > 1 or self._queue or in_flight > 1:
                        self._busy_at = now
                        busy = True
                    if now - checked > LEFTOVER_CHECK:
                        checked, waiting = now, True
            if not tickets:
                if tickets is not None:  # every ticket taken was abandoned
                    continue
                appender.release()
                waiting = self._sessionise() >= IDLE_CHUNK or self._backlog > 0
                continue
            if busy:
                self._acknowledge_raw(tickets, appender)
                waiting = waiting or self._backlog > 0
                if self._backlog > BACKLOG_LIMIT:
                    self._sessionise()
            else:
                self._commit(tickets, write)
            self._released += sum(1 for ticket in tickets if ticket.counted)
            self._last_batch = len(tickets)

    def _gather(self, deadline: float) -> None:
        """Wait (lock held) until every page view in flight has queued, or until `deadline`.

        In flight: those counted between arrival and answer, and at least as many as the last
        batch answered (a wave of keep-alive clients whose next requests are still being read)."""
        in_flight = self._arrived - self._dropped - self._released
        target = min(max(in_flight, self._last_batch), BATCH_LIMIT)
        if len(self._queue) >= target:
            return
        self._target = target
        while len(self._queue) < target and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.wait(remaining)
        self._target = 1

    def _acknowledge_raw(self, tickets: list[_Ticket], appender: Appender) -> None:
        raw = [t for t in tickets if all(hit.raw for hit in t.hits)]
        rest = [t for t in tickets if not all(hit.raw for hit in t.hits)]
        if raw:
            self._commit(raw, appender)
            self._backlog += sum(len(t.hits) for t in raw if t.error is None)
        if rest:  # identifies and server events (maybe late): sessionised before their answer
            self._commit(rest, write)

    def _sessionise(self) -> int:
        try:
            with within(self.wait * 2):
                count = sessionise_backlog(self.engine, IDLE_CHUNK)
        except Exception as exc:  # the hits stay in `hits`; the next idle moment retries
            log.warning("collector sessionising failed: %s", exc)
            time.sleep(0.5)
            return 0
        self._backlog = max(0, self._backlog - count) if count else 0
        return count

    def _commit(self, tickets: list[_Ticket], store) -> None:
        # Bounded like the requests waiting for it: a database that hangs fails the batch in time
        # for the writer to take the next one once it answers again.
        with within(self.wait):
            self._attempt(tickets, store)

    def _attempt(self, tickets: list[_Ticket], store) -> None:
        error: BaseException | None = None
        for attempt in range(RETRIES):
            try:
                store(self.engine, [hit for ticket in tickets for hit in ticket.hits])
            except Exception as exc:  # deadlocks, lock timeouts, lost connections: retry, then split
                error = exc
                log.warning("collector batch failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(0.02 * 2**attempt)
                continue
            for ticket in tickets:
                ticket.release()
            return
        if len(tickets) > 1 and not self._outage(error):
            # One poisonous hit must not sink the requests batched with it (a database that is
            # down or unreachable would only fail each of them again, slowly).
            for ticket in tickets:
                self._attempt([ticket], store)
            return
        for ticket in tickets:
            ticket.error = error
            ticket.release()

    def _outage(self, error: BaseException | None) -> bool:
        """Whether the error is about reaching the database rather than about the hits."""
        dbapi = self.engine.dialect.dbapi
        connection_errors = (OperationalError, InterfaceError, dbapi.OperationalError, dbapi.InterfaceError)
        return isinstance(error, connection_errors)

    def overloaded(self) -> bool:
        """More page views wait for a commit than the database has been taking: refuse new ones."""
        return len(self._queue) > MAX_QUEUED
