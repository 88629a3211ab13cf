"""The report pages' own table: failed login attempts, shared by every process through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tracker.db import Base, BigId, UTCDateTime, utcnow


class LoginAttempt(Base):
    """One failed login, keyed by a hash of the email and by the client address."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # "email" or "ip"
    kind: Mapped[str] = mapped_column(String(8))
    # A keyed hash of the normalised email, or the client address.
    key: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "kind", "key", "attempted_at"),)
