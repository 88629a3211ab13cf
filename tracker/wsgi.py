"""The WSGI entry point gunicorn serves: `tracker.wsgi:app`."""

from tracker.app import create_app

app = create_app()
