"""Self-hosted SMS and marketing attribution: the core, the collector and the webhook receivers.

The app factory is `tracker.app.create_app`; `tracker.wsgi:app` is what gunicorn serves.
"""
