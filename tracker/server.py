"""Run the app under gunicorn from `tracker serve`.

gunicorn's threaded worker (gthread), extended so that its event loop answers plain page views
itself (`tracker.collect.eventloop`): it queues each one for the process's writer thread, which
commits them in groups, and sends the 202 once the group is committed. Everything else runs in the
worker's threads as usual. No access log: it would write every visitor's IP address to disk.
"""

from __future__ import annotations

import importlib
import re
import sys

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from reports import nightly

DEFAULT_APP = "tracker.wsgi:app"
# gunicorn's gthread worker whose event loop answers plain page views itself.
WORKER_CLASS = "tracker.collect.eventloop.CollectorWorker"
SWITCH_INTERVAL = 0.0005


def options(bind: str, workers: int, threads: int, worker_class: str = WORKER_CLASS) -> dict:
    """The gunicorn settings `tracker serve` uses (the benchmark reuses them, and compares the
    worker with gunicorn's stock `gthread`)."""
    return {
        "bind": bind,
        "workers": workers,
        "threads": max(threads, 1),
        "worker_class": worker_class,
        "accesslog": None,
        "errorlog": "-",
        "logger_class": PrivateLogger,
        "graceful_timeout": 10,
        "keepalive": 5,
        # Let the writer thread finish its batch before a worker is recycled.
        "timeout": 60,
        "post_worker_init": _post_worker_init,
    }


class PrivateLogger(Logger):
    """gunicorn's error log without the client's address: gunicorn writes it for every request it
    cannot parse ("Invalid request from ip=…"), and nothing personal may reach a log."""

    _ADDRESS = re.compile(r"\bfrom ip=\S+?:(?= )")

    def warning(self, msg, *args, **kwargs):
        super().warning(self._ADDRESS.sub("from a client:", str(msg)), *args, **kwargs)


def _post_worker_init(worker) -> None:
    # The writer thread waits on the database, then needs the GIL back at once: with the default
    # 5 ms switch interval it queues behind busy request threads after every round trip.
    sys.setswitchinterval(SWITCH_INTERVAL)
    # The nightly build and digest, looked for by every worker; the database lets one run each.
    config = getattr(getattr(worker, "wsgi", None), "config", {}).get("TRACKER")
    if config is not None:
        nightly.start(config)


class _Server(BaseApplication):
    def __init__(self, settings: dict, app_uri: str):
        self.settings = settings
        self.app_uri = app_uri
        super().__init__()

    def load_config(self):
        for key, value in self.settings.items():
            self.cfg.set(key, value)

    def load(self):
        module, _, attribute = self.app_uri.partition(":")
        return getattr(importlib.import_module(module), attribute or "app")


def run(
    bind: str, workers: int, threads: int, app: str = DEFAULT_APP, worker_class: str = WORKER_CLASS
) -> None:
    _Server(options(bind, workers, threads, worker_class), app).run()
