"""The collector: the snippet, page views, identify, and the server-side events API."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line loads parts of the collector without Flask
    from flask import Flask


def init_app(app: Flask) -> None:
    from tracker.collect import snippet, views

    snippet.init_app(app)
    views.init_app(app)
