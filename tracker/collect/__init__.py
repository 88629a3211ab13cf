"""The collector: the snippet, page views, identify, and the server-side events API."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the collector's endpoints (filled in by the collector)."""
