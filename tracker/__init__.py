"""Self-hosted SMS and marketing attribution: the collector and webhook receivers."""

__all__ = ["create_app"]


def __getattr__(name: str):
    # The app (and Flask with it) loads on first use, so the command line starts without it.
    if name == "create_app":
        from tracker.app import create_app

        return create_app
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
