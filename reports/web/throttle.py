"""Login throttling: failed attempts per email and per client address, counted in the database."""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from reports.models import LoginAttempt

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20


@dataclass(frozen=True)
class Throttle:
    """Who is trying: the email they typed (hashed) and the client address."""

    email_key: str
    address: str

    @classmethod
    def for_login(cls, secret_key: str, email: str, address: str | None) -> Throttle:
        digest = hmac.new(secret_key.encode(), email.strip().lower().encode(), hashlib.sha256)
        return cls(email_key=digest.hexdigest(), address=(address or "unknown")[:64])

    def _limits(self) -> tuple[tuple[str, str, int], ...]:
        return (
            ("email", self.email_key, MAX_FAILURES_PER_EMAIL),
            ("ip", self.address, MAX_FAILURES_PER_ADDRESS),
        )

    def blocked_minutes(self, session: Session, now: datetime) -> int:
        """0 when a login may be tried, else how many minutes until the next try is allowed."""
        since = now - WINDOW
        wait = timedelta(0)
        for kind, key, limit in self._limits():
            recent = (
                select(LoginAttempt.attempted_at)
                .where(
                    LoginAttempt.kind == kind,
                    LoginAttempt.key == key,
                    LoginAttempt.attempted_at > since,
                )
                .order_by(LoginAttempt.attempted_at.desc())
                .limit(limit)
            )
            times = list(session.scalars(recent))
            if len(times) >= limit:
                # Allowed again once the oldest of the last `limit` failures leaves the window.
                wait = max(wait, times[-1] + WINDOW - now)
        if wait <= timedelta(0):
            return 0
        return max(1, math.ceil(wait.total_seconds() / 60))

    def record_failure(self, session: Session, now: datetime) -> None:
        session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < now - WINDOW))
        for kind, key, _ in self._limits():
            session.add(LoginAttempt(kind=kind, key=key, attempted_at=now))
        session.flush()

    def record_success(self, session: Session) -> None:
        session.execute(
            delete(LoginAttempt).where(LoginAttempt.kind == "email", LoginAttempt.key == self.email_key)
        )
