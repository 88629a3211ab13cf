"""Self-hosted SMS and marketing attribution: the collector and webhook receivers."""

from tracker.app import create_app

__all__ = ["create_app"]
