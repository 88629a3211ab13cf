"""The audit trail: one line on the server's log (stderr) per change of who may see what, per login
and per failed login. Never a password, a token or an IP address: an address is a keyed hash
(`ip_key`), enough to tell that failures came from one place."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys

log = logging.getLogger("tracker.audit")
if not log.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s audit: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def audit(action: str, **fields: object) -> None:
    """`action` and its fields (user=…, site=…, token=<name>) as one line; a value with spaces is
    quoted, control characters never reach the log."""
    log.info(" ".join([action, *(f"{name}={_value(value)}" for name, value in fields.items())]))


def _value(value: object) -> str:
    text = _CONTROL.sub(" ", str(value))
    return text if text and " " not in text and '"' not in text else '"' + text.replace('"', "'") + '"'


def ip_key(ip: str | None, secret: str) -> str:
    """A keyed hash of a client's address: the same address gives the same key, no address is kept."""
    digest = hmac.new(secret.encode(), (ip or "").encode(), hashlib.sha256).hexdigest()
    return digest[:12]
