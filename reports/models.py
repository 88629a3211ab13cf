"""The report side's tables: nightly attribution and traffic rollups, and which days they cover."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracker.db import Base, BigId, UTCDateTime, utcnow
from tracker.limits import UTM_LENGTH


class TouchKey:
    """A report row's key in a rollup: the six dimensions of a touch (tracker.touch.DIMENSIONS),
    '' where the rollup does not keep one."""

    channel: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(UTM_LENGTH))
    medium: Mapped[str] = mapped_column(String(UTM_LENGTH))
    campaign: Mapped[str] = mapped_column(String(UTM_LENGTH))
    content: Mapped[str] = mapped_column(String(UTM_LENGTH))
    term: Mapped[str] = mapped_column(String(UTM_LENGTH))


class ReportRollup(TouchKey, Base):
    """Credit each split model gave one touch key on one local day: orders and new customers in
    1/10000 (`units_*`, `new_*`) and revenue in minor units (`revenue_*`), one column triple per model.

    One row per day and key rather than per model: the nightly build writes a sixth of the rows.
    A key a model gave nothing holds zeros in that model's columns.
    """

    __tablename__ = "report_rollups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign key: rollups are derived rows written by the ten thousand, and a day counts only
    # while its report_builds row (which cascades with the site) says it is built (so too below).
    site_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    lookback: Mapped[int] = mapped_column(SmallInteger)
    units_last_click: Mapped[int] = mapped_column(BigInteger)
    revenue_last_click: Mapped[int] = mapped_column(BigInteger)
    new_last_click: Mapped[int] = mapped_column(BigInteger)
    units_last_non_direct: Mapped[int] = mapped_column(BigInteger)
    revenue_last_non_direct: Mapped[int] = mapped_column(BigInteger)
    new_last_non_direct: Mapped[int] = mapped_column(BigInteger)
    units_first_click: Mapped[int] = mapped_column(BigInteger)
    revenue_first_click: Mapped[int] = mapped_column(BigInteger)
    new_first_click: Mapped[int] = mapped_column(BigInteger)
    units_linear: Mapped[int] = mapped_column(BigInteger)
    revenue_linear: Mapped[int] = mapped_column(BigInteger)
    new_linear: Mapped[int] = mapped_column(BigInteger)
    units_position_based: Mapped[int] = mapped_column(BigInteger)
    revenue_position_based: Mapped[int] = mapped_column(BigInteger)
    new_position_based: Mapped[int] = mapped_column(BigInteger)
    units_time_decay: Mapped[int] = mapped_column(BigInteger)
    revenue_time_decay: Mapped[int] = mapped_column(BigInteger)
    new_time_decay: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "site_id", "lookback", "day"),)


class ReportFirstSale(TouchKey, Base):
    """A new customer's first sale on one local day and the touch key each split model credits it
    to (default lookback): the customer's share in 1/10000 (`units_*`) and the first order's revenue
    share in minor units (`revenue_*`). The cohorts report reads it for built days and follows each
    customer's later orders in `report_sales`. A key a model gave nothing holds zeros in its columns.
    """

    __tablename__ = "report_first_sales"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # no foreign key: as for report_rollups
    day: Mapped[date] = mapped_column(Date)
    order_id: Mapped[int] = mapped_column(BigInteger)
    units_last_click: Mapped[int] = mapped_column(BigInteger)
    revenue_last_click: Mapped[int] = mapped_column(BigInteger)
    units_last_non_direct: Mapped[int] = mapped_column(BigInteger)
    revenue_last_non_direct: Mapped[int] = mapped_column(BigInteger)
    units_first_click: Mapped[int] = mapped_column(BigInteger)
    revenue_first_click: Mapped[int] = mapped_column(BigInteger)
    units_linear: Mapped[int] = mapped_column(BigInteger)
    revenue_linear: Mapped[int] = mapped_column(BigInteger)
    units_position_based: Mapped[int] = mapped_column(BigInteger)
    revenue_position_based: Mapped[int] = mapped_column(BigInteger)
    units_time_decay: Mapped[int] = mapped_column(BigInteger)
    revenue_time_decay: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "site_id", "day"),)


class ReportSale(Base):
    """A counted order of one local day as the cohorts report follows customers: its customer
    (tracker.sales.customer_id_sql, resolved when the day was built) and net revenue. The report
    finds a customer's later orders through the (site, customer, time) index."""

    __tablename__ = "report_sales"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # no foreign key: as for report_rollups
    day: Mapped[date] = mapped_column(Date)
    order_id: Mapped[int] = mapped_column(BigInteger)
    customer: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    net_minor: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "site_id", "day"), Index(None, "site_id", "customer", "created_at"))


class ReportSessions(TouchKey, Base):
    """Sessions that started on one local day, per row of the stored groupings (additive over days):
    channel, source, medium and campaign; content and term are '' (a grouping by them is counted
    from the sessions themselves)."""

    __tablename__ = "report_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    sessions: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "site_id", "day"),)


class ReportVisitors(TouchKey, Base):
    """Visitors seen on one local day in one row of a grouping, by the day each was last seen before.

    A row's distinct visitors over any range [from, to] are exactly the visitors of its days in the
    range whose previous day in that row (`prev_day`) is before `from` or absent: each visitor is
    counted once, on its first day inside the range. `level` names the grouping (see reports.traffic);
    dimensions outside it are stored as ''.
    """

    __tablename__ = "report_visitors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    day: Mapped[date] = mapped_column(Date)
    prev_day: Mapped[date | None] = mapped_column(Date)
    visitors: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "site_id", "level", "day"),)


class ReportBuild(Base):
    """One built day: when, and the newest session then, so later changes can be told apart."""

    __tablename__ = "report_builds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    lookback: Mapped[int] = mapped_column(SmallInteger)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sessions_mark: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (UniqueConstraint("site_id", "lookback", "day"),)


class LoginAttempt(Base):
    """One failed login on the report pages, keyed by a hash of the email and by the client address
    (kept in the database, so every process shares the throttling)."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # "email" or "ip"
    kind: Mapped[str] = mapped_column(String(8))
    # A keyed hash of the normalised email, or the client address.
    key: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "kind", "key", "attempted_at"),)


class DigestSend(Base):
    """A morning email sent: one per site, local day and recipient, so a second run sends nothing."""

    __tablename__ = "digest_sends"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NightlyRun(Base):
    """The nightly job of a site for a local day, claimed by one `tracker serve` process (the row is
    the lock: hosts and workers insert it, one wins); a run not finished in time may be taken over."""

    __tablename__ = "nightly_runs"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Claim(Base):
    """What an SMS or email platform reports as its attributed revenue for a campaign and day
    (`tracker claims import`); keys normalised like UTM values, the platform as the UTM source."""

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    date: Mapped[date] = mapped_column(Date)
    platform: Mapped[str] = mapped_column(String(UTM_LENGTH))
    campaign: Mapped[str] = mapped_column(String(UTM_LENGTH))
    currency: Mapped[str] = mapped_column(String(3))
    revenue_minor: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int | None] = mapped_column(Integer)
    clicks: Mapped[int | None] = mapped_column(Integer)
    sends: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("site_id", "date", "platform", "campaign"),)
