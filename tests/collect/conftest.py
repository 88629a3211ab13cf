"""Shared fixtures of the collector tests."""

import pytest

from tracker.credentials import hash_token, new_token
from tracker.models import ApiToken


@pytest.fixture
def token(session):
    """An API token for the server-side events API."""
    value = new_token()
    session.add(ApiToken(name="server", token_hash=hash_token(value), prefix=value[:8]))
    session.commit()
    return value
