"""The morning email: yesterday's and the last 30 days' figures of a site, its SMS campaigns, and
the alerts that catch broken tracking.

Every figure comes from the ROI report (`roi_report`) for the same range, model and lookback,
so the email and the report page never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from reports.attribution import DEFAULT_MODEL
from reports.credit import UNATTRIBUTED
from reports.models import Claim, DigestSend
from reports.naming import find_splits, recorded_values
from reports.roi import DEFAULT_LOOKBACK, ReportQuery, roi_report
from tracker.days import range_bounds
from tracker.db import begin_write
from tracker.mail import MailServer, send
from tracker.models import (
    DeliveryStatus,
    Pageview,
    Role,
    Site,
    TrackedSession,
    User,
    UserSite,
    WebhookDelivery,
)
from tracker.touch import NOT_SET, SMS_CHANNEL

MONTH_DAYS = 30
WEEK_DAYS = 7
# Yesterday's SMS revenue is compared with the same weekday of this many weeks before.
WEEKS_COMPARED = 4
SILENT_HOURS = 24
CAMPAIGNS = ("channel", "source", "campaign")
WEBHOOK_HOURS = 48

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "email"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Period:
    label: str
    date_from: date
    date_to: date
    totals: dict
    coverage: str | None  # attributed revenue / net revenue, as a percentage
    link: str


@dataclass
class Digest:
    site: Site
    day: date
    yesterday: Period
    month: Period
    campaigns: list[dict]  # yesterday's SMS campaigns, by revenue
    best: dict | None  # of the last 7 days, by ROI (revenue when nothing was spent)
    worst: dict | None
    alerts: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        revenue = self.yesterday.totals["revenue"]
        return f"{self.site.domain} on {self.day:%a %d %b}: {revenue} {self.site.currency} revenue"


def build(session: Session, site: Site, day: date, base_url: str, now: datetime | None = None) -> Digest:
    """The digest of `site` for the local day `day`."""
    yesterday = _period(session, _query(site, day, day, CAMPAIGNS), "Yesterday", base_url)
    month = _period(session, _query(site, day - timedelta(days=MONTH_DAYS - 1), day, ("channel",)),
                    f"Last {MONTH_DAYS} days", base_url)
    campaigns = [r for r in yesterday.rows if r["channel"] == SMS_CHANNEL and Decimal(r["revenue"])]
    week = roi_report(session, _query(site, day - timedelta(days=WEEK_DAYS - 1), day, CAMPAIGNS))
    sms_week = [r for r in week["rows"]
                if r["channel"] == SMS_CHANNEL and (Decimal(r["revenue"]) or Decimal(r["cost"]))]
    ranked = sorted(sms_week, key=_merit)
    digest = Digest(site, day, yesterday.period, month.period, campaigns,
                    ranked[-1] if ranked else None, ranked[0] if len(ranked) > 1 else None)
    digest.alerts = alerts(session, site, day, now or datetime.now(UTC),
                           sms_yesterday=sms_revenue(yesterday.rows))
    return digest


@dataclass
class _Read:
    period: Period
    rows: list[dict]


def _period(session: Session, query: ReportQuery, label: str, base_url: str) -> _Read:
    report = roi_report(session, query)
    totals = report["totals"]
    unattributed = sum(Decimal(r["revenue"]) for r in report["rows"] if r["channel"] == UNATTRIBUTED)
    revenue = Decimal(totals["revenue"])
    coverage = f"{(revenue - unattributed) / revenue * 100:.0f}%" if revenue else None
    link = f"{base_url.rstrip('/')}/reports/roi?" + urlencode(
        {"site": query.site.public_id, "preset": "custom", "from": query.date_from, "to": query.date_to})
    return _Read(Period(label, query.date_from, query.date_to, totals, coverage, link), report["rows"])


def _query(site: Site, first: date, last: date, by: tuple[str, ...]) -> ReportQuery:
    """The ROI report's query with its default model and lookback."""
    return ReportQuery(site, first, last, DEFAULT_MODEL, DEFAULT_LOOKBACK, by)


def _merit(row: dict) -> tuple[Decimal, Decimal]:
    """ROI first (revenue without any cost ranks above every ROI), then revenue."""
    roi = Decimal(row["roi"]) if row["roi"] is not None else Decimal("Infinity")
    return roi, Decimal(row["revenue"])


def sms_revenue(rows: list[dict]) -> Decimal:
    """The SMS channel's revenue among a report's rows (grouped by channel first)."""
    return sum((Decimal(r["revenue"]) for r in rows if r["channel"] == SMS_CHANNEL), Decimal(0))


# --- alerts ----------------------------------------------------------------------------------


def alerts(session: Session, site: Site, day: date, now: datetime,
           sms_yesterday: Decimal | None = None) -> list[str]:
    """One line per sign of broken tracking, each with the figure that triggered it."""
    found: list[str] = []
    last_view = session.scalar(select(func.max(Pageview.ts)).where(Pageview.site_id == site.id))
    if last_view is None or last_view < now - timedelta(hours=SILENT_HOURS):
        since = f"the last one was {last_view:%Y-%m-%d %H:%M} UTC" if last_view else "none was ever received"
        found.append(f"No page view received in the last {SILENT_HOURS} hours ({since}): is the snippet "
                     "still on the store's pages?")
    window = now - timedelta(hours=WEBHOOK_HOURS)
    failed = session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.site_id == site.id, WebhookDelivery.received_at >= window,
        WebhookDelivery.status == DeliveryStatus.FAILED))
    received = session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.site_id == site.id, WebhookDelivery.received_at >= window))
    views = session.scalar(select(func.count()).select_from(Pageview).where(
        Pageview.site_id == site.id, Pageview.ts >= window))
    if failed:
        found.append(f"{failed} webhook deliveries failed in the last {WEBHOOK_HOURS} hours "
                     "(`tracker webhooks list --status failed` shows why).")
    elif not received and views:
        found.append(f"No order webhook received in the last {WEBHOOK_HOURS} hours while {views} page views "
                     "arrived: check the store's webhook and its secret.")
    found += lost_clicks(session, site, day)
    found += new_spellings(session, site, day)
    if sms_yesterday is not None:
        before = []
        for weeks in range(1, WEEKS_COMPARED + 1):
            same = day - timedelta(weeks=weeks)
            report = roi_report(session, _query(site, same, same, ("channel",)))
            before.append(sms_revenue(report["rows"]))
        low, high = min(before), max(before)
        if high and not low <= sms_yesterday <= high:
            found.append(f"Yesterday's SMS revenue, {sms_yesterday} {site.currency}, is outside the range of "
                         f"the same weekday over the previous {WEEKS_COMPARED} weeks ({low} to {high}).")
    return found


def lost_clicks(session: Session, site: Site, day: date) -> list[str]:
    """Campaigns whose platform reported clicks on `day` (its imported claims) but under half of
    them landed as visits carrying the campaign: links losing their UTMs on the way."""
    start, end = range_bounds(day, day, ZoneInfo(site.timezone))
    found = []
    for platform, campaign, clicks in session.execute(
        select(Claim.platform, Claim.campaign, Claim.clicks)
        .where(Claim.site_id == site.id, Claim.date == day, Claim.clicks > 0)
        .order_by(Claim.clicks.desc())
    ):
        s = TrackedSession
        landed = session.scalar(select(func.count()).select_from(s).where(
            s.site_id == site.id, s.started_at >= start, s.started_at < end,
            s.utm_source == platform, s.utm_campaign == (campaign or NOT_SET)))
        if landed * 2 < clicks:
            share = landed * 100 // clicks
            found.append(f"{platform} reported {clicks} clicks on \"{campaign}\" yesterday but {landed} "
                         f"visits landed from it ({share}%): its links may be losing their UTMs.")
    return found


def new_spellings(session: Session, site: Site, day: date) -> list[str]:
    """Spellings first recorded on `day` that split a value recorded before (UTM hygiene)."""
    start, end = range_bounds(day, day, ZoneInfo(site.timezone))
    found = []
    for split in find_splits(recorded_values(session, site)):
        column = getattr(TrackedSession, f"utm_{split.dimension}")
        firsts = dict(session.execute(
            select(column, func.min(TrackedSession.started_at))
            .where(TrackedSession.site_id == site.id, column.in_([v for v, _ in split.spellings]))
            .group_by(column)).all())
        new = [v for v, _ in split.spellings if firsts.get(v) is not None and start <= firsts[v] < end]
        old = [v for v, _ in split.spellings if v not in new]
        for value in new if old else []:
            sessions = dict(split.spellings)[value]
            found.append(f"A new spelling splits the {split.dimension} \"{old[0]}\": \"{value}\" appeared "
                         f"yesterday ({sessions} sessions so far); fix the link or the platform's naming.")
    return found


# --- the message -----------------------------------------------------------------------------


def message(digest: Digest, sender: str, recipient: str) -> EmailMessage:
    """The email: a plain-text part and an HTML part with inline styles only (no images, no script)."""
    context = {"d": digest, "currency": digest.site.currency}
    mail = EmailMessage()
    mail["Subject"] = digest.subject
    mail["From"] = sender
    mail["To"] = recipient
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail.set_content(_templates.get_template("digest.txt").render(context))
    mail.add_alternative(_templates.get_template("digest.html").render(context), subtype="html")
    return mail


# --- who gets it, and who had it ------------------------------------------------------------


def recipients(session: Session, site: Site) -> list[str]:
    """The report users who see the site: every admin and the viewers it was granted to."""
    viewers = select(UserSite.user_id).where(UserSite.site_id == site.id)
    return list(session.scalars(select(User.email).where(
        or_(User.role == Role.ADMIN, User.id.in_(viewers))).order_by(User.email)))


def already_sent(session: Session, site: Site, day: date) -> set[str]:
    return set(session.scalars(select(DigestSend.recipient).where(
        DigestSend.site_id == site.id, DigestSend.day == day)))


def record(session: Session, site_id: int, day: date, recipient: str) -> None:
    session.rollback()  # end any read: the record is written as the writer
    begin_write(session)
    session.add(DigestSend(site_id=site_id, day=day, recipient=recipient))
    session.commit()


@dataclass(frozen=True)
class Delivered:
    sent: int
    had: int  # recipients who had it already
    recipients: int


def deliver(session: Session, site: Site, day: date, server: MailServer, sender: str, base_url: str,
            to: str | None = None) -> Delivered:
    """Send the digest of `day` to each report user who sees the site (or only `to`) who has not had
    it yet, recording each send; raises MailError when the mail server fails."""
    wanted = [to] if to else recipients(session, site)
    done = already_sent(session, site, day)
    todo = [r for r in wanted if r not in done]
    if todo:
        built = build(session, site, day, base_url)
        site_id = site.id
        for recipient in todo:
            send(server, [message(built, sender, recipient)])
            record(session, site_id, day, recipient)
    return Delivered(len(todo), len(done & set(wanted)), len(wanted))
