"""Run the app under gunicorn from `tracker serve`."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from tracker.wsgi import app

        return app


def run(bind: str, workers: int, threads: int) -> None:
    _Server(
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "accesslog": "-",
            "graceful_timeout": 10,
        }
    ).run()
