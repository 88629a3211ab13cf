"""`tracker demo`: realistic synthetic traffic, orders, spend and SMS platforms' claims for demo.example.

SMS platforms (Attentive, Postscript, Klaviyo) next to email, search, social, referrals and
direct visits; return visits, people using two devices, refunds, cancellations and daily spend.
Rows are generated in chunks and written in bulk (COPY on PostgreSQL, executemany on SQLite)
with explicit ids, so a million sessions take well under two minutes.
"""

from __future__ import annotations

import math
import random
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import click
from sqlalchemy import delete, select, text
from sqlalchemy.engine import Connection

from reports.bulk import bulk_insert, follow_ids
from reports.models import (
    Claim,
    ReportBuild,
    ReportFirstSale,
    ReportRollup,
    ReportSale,
    ReportSessions,
    ReportVisitors,
)
from tracker.console import CommandError, db_session, user_errors
from tracker.days import day_start, local_days, site_today
from tracker.models import Cost, Order, Pageview, Person, Refund, Site, TrackedSession, Visitor
from tracker.sales import PAID_STATUSES, OrderStatus
from tracker.sites import create_site
from tracker.touch import channel_for

DEMO_DOMAIN = "demo.example"
DEMO_TIMEZONE = "America/New_York"
CHUNK_VISITORS = 20_000
# The tables written with explicit ids.
ID_TABLES = ("persons", "visitors", "sessions", "orders", "refunds")
SESSIONS_PER_VISITOR = 2.5
CROSS_DEVICE_SHARE = 0.08  # visitors that share a person with another device
IDENTIFIED_SHARE = 0.12  # visitors who gave an email or phone on their own

SMS_CAMPAIGNS = ("welcome", "black-friday", "abandoned-cart", "winback", "new-arrivals", "vip-early-access")
SMS_OFFERS = ("10off", "free-shipping", "bogo", "20off", "(not set)")
SMS_SEGMENTS = ("vip", "engaged-30d", "lapsed-90d", "new-subscribers", "(not set)")


@dataclass(frozen=True)
class Source:
    weight: float
    source: str
    medium: str
    campaigns: tuple[str, ...] = ("(not set)",)
    contents: tuple[str, ...] = ("(not set)",)
    terms: tuple[str, ...] = ("(not set)",)
    conversion: float = 1.0  # relative chance that a visit from here ends in an order
    daily_cost: int = 0  # minor units per campaign per day, 0 when the source costs nothing
    referrer: str | None = None


SOURCES = (
    Source(12, "attentive", "sms", SMS_CAMPAIGNS, SMS_OFFERS, SMS_SEGMENTS, 2.6, 9_000),
    Source(8, "postscript", "sms", SMS_CAMPAIGNS[:4], SMS_OFFERS, SMS_SEGMENTS, 2.3, 6_000),
    Source(5, "klaviyo", "sms", ("welcome", "abandoned-cart", "back-in-stock"), SMS_OFFERS, SMS_SEGMENTS,
           2.0, 3_500),
    Source(9, "klaviyo", "email", ("newsletter", "abandoned-cart", "winback"), ("hero", "footer"),
           conversion=1.4, daily_cost=1_500),
    Source(11, "google", "cpc", ("brand", "shopping", "generic"), ("(not set)",),
           ("sneakers", "running shoes", "shoe sale"), 1.3, 18_000, "https://www.google.com/"),
    Source(12, "google", "organic", conversion=0.9, referrer="https://www.google.com/"),
    Source(2, "bing", "organic", conversion=0.8, referrer="https://www.bing.com/"),
    Source(9, "facebook", "paid_social", ("prospecting", "retargeting"), ("carousel", "video"),
           conversion=0.7, daily_cost=15_000, referrer="https://m.facebook.com/"),
    Source(6, "instagram", "social", conversion=0.5, referrer="https://l.instagram.com/"),
    Source(3, "runningblog.example.org", "referral", conversion=0.8,
           referrer="https://runningblog.example.org/best-shoes"),
    Source(2, "reddit.com", "referral", conversion=0.6, referrer="https://www.reddit.com/r/running/"),
    Source(21, "(direct)", "(none)", conversion=1.1),
)
RETURN_SOURCES = (0, 1, 2, 3, 11, 11, 11, 5)  # return visits lean on SMS, email and direct
DEVICES = ("mobile", "mobile", "mobile", "desktop", "desktop", "tablet")

SESSION_COLUMNS = (
    "id", "site_id", "visitor_id", "started_at", "last_seen_at", "pageviews", "landing_url", "referrer",
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "click_id", "channel",
    "device_type", "prev_visit_at", "prev_channel_visit_at", "prev_campaign_visit_at", "visits_linked",
    "started_day", "prev_visit_day", "prev_channel_visit_day", "prev_campaign_visit_day",
)  # the visit links (reports.links) and, on PostgreSQL, their days are written with the sessions,
# as the collector does
VISITOR_COLUMNS = (
    "id", "site_id", "visitor_key", "person_id", "first_seen_at", "last_seen_at", "device_type",
)
PERSON_COLUMNS = ("id", "site_id", "created_at")
ORDER_COLUMNS = (
    "id", "site_id", "provider", "external_id", "created_at", "source_updated_at", "paid_at", "status",
    "is_test", "currency", "total_minor", "match_method", "visitor_id", "person_id", "landing_url",
    "referrer", "received_at", "updated_at",
)
REFUND_COLUMNS = (
    "id", "site_id", "provider", "external_id", "order_external_id", "order_id", "amount_minor", "currency",
    "created_at",
)
COLUMNS = {"persons": PERSON_COLUMNS, "visitors": VISITOR_COLUMNS, "sessions": SESSION_COLUMNS,
           "orders": ORDER_COLUMNS, "refunds": REFUND_COLUMNS}


class _Ids:
    """Explicit ids for bulk inserts, continuing after what the tables already hold."""

    def __init__(self, conn: Connection):
        self.next = {
            name: (conn.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {name}")).scalar() or 0) + 1
            for name in ID_TABLES
        }

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


def _landing(
    rng: random.Random, src: Source, campaign: str, content: str, term: str
) -> tuple[str, str | None]:
    path = rng.choice(("/", "/collections/sneakers", "/products/trail-runner", "/products/city-walker"))
    params = {}
    if src.medium in ("sms", "email") or src.medium in ("cpc", "paid_social"):
        params = {"utm_source": src.source, "utm_medium": src.medium, "utm_campaign": campaign}
        if content != "(not set)":
            params["utm_content"] = content
        if term != "(not set)":
            params["utm_term"] = term
    query = f"?{urlencode(params)}" if params else ""
    return f"https://{DEMO_DOMAIN}{path}{query}", src.referrer


_NO_VISIT = (None, None)


def generate(conn: Connection, site_id: int, days: int, sessions: int, orders: int, seed: int,
             progress=None, zone: str = DEMO_TIMEZONE, until: date | None = None) -> dict[str, int]:
    """Write the demo rows of the `days` before now (or of the `days` local days through `until`, up
    to now); returns how many of each were made. Visitors are new, ids follow the stored ones. The
    tables are left as loaded: `tracker demo` analyses them after."""
    rng = random.Random(seed)
    ids = _Ids(conn)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    if until is not None:  # the local days until-days+1..until (up to now)
        end = min(end, day_start(until + timedelta(days=1), ZoneInfo(zone)))
        start = day_start(until - timedelta(days=days - 1), ZoneInfo(zone))
    span = (end - start).total_seconds()
    weights = [s.weight for s in SOURCES]
    day_of = local_days(start, end, ZoneInfo(zone))
    local_day = day_of if conn.dialect.name == "postgresql" else None
    # (local day, platform, campaign) -> [landed visits, orders, revenue], for the platforms' claims
    sms_days: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    mean_conversion = sum(s.weight * s.conversion for s in SOURCES) / sum(weights)
    base_rate = min(orders / max(sessions, 1) / mean_conversion, 0.9)
    counts = dict(persons=0, visitors=0, sessions=0, orders=0, refunds=0)
    made = 0
    while made < sessions:
        persons, visitors, session_rows, order_rows, refund_rows = [], [], [], [], []
        pending_partner = None  # a visitor waiting for a second device of the same person
        for _ in range(CHUNK_VISITORS):
            if made >= sessions:
                break
            device = rng.choice(DEVICES)
            first = start + timedelta(seconds=rng.random() * span)
            person = None
            if pending_partner is not None:
                person, pending_partner = pending_partner, None
            elif rng.random() < CROSS_DEVICE_SHARE / 2 or rng.random() < IDENTIFIED_SHARE:
                person = ids.take("persons")
                persons.append((person, site_id, first))
                if rng.random() < CROSS_DEVICE_SHARE / (CROSS_DEVICE_SHARE + IDENTIFIED_SHARE):
                    pending_partner = person
            visitor = ids.take("visitors")
            n = min(1 + int(rng.expovariate(1 / (SESSIONS_PER_VISITOR - 1))), sessions - made)
            at = first
            last = first
            # The visitor's latest visit per level, as (start, local day on PostgreSQL).
            previous, by_channel, by_campaign = _NO_VISIT, {}, {}
            for k in range(n):
                if k:
                    at = at + timedelta(hours=rng.expovariate(1 / 40))
                    if at >= end:
                        break
                src = SOURCES[RETURN_SOURCES[rng.randrange(len(RETURN_SOURCES))]] if k else \
                    rng.choices(SOURCES, weights)[0]
                campaign, content, term = rng.choice(src.campaigns), rng.choice(src.contents), \
                    rng.choice(src.terms)
                landing, referrer = _landing(rng, src, campaign, content, term)
                pages = 1 + int(rng.expovariate(1 / 3))
                seen = at + timedelta(seconds=30 * pages + rng.randrange(60))
                last = max(last, seen)
                channel, in_campaign = channel_for(src.source, src.medium), (src.source, src.medium, campaign)
                visit = (at, local_day(at) if local_day else None)
                in_channel = by_channel.get(channel, _NO_VISIT)
                same_campaign = by_campaign.get(in_campaign, _NO_VISIT)
                session_rows.append((
                    ids.take("sessions"), site_id, visitor, at, seen, pages, landing, referrer, src.source,
                    src.medium, campaign, content, term, None, channel, device,
                    previous[0], in_channel[0], same_campaign[0], True,
                    visit[1], previous[1], in_channel[1], same_campaign[1],
                ))
                previous = by_channel[channel] = by_campaign[in_campaign] = visit
                made += 1
                texted = sms_days[(day_of(at), src.source, campaign)] if src.source in CLAIM_FACTORS else None
                if texted is not None:
                    texted[0] += 1
                if rng.random() < base_rate * src.conversion:
                    paid_at = min(seen + timedelta(minutes=rng.randrange(2, 30)), end)
                    total = _order(rng, ids, order_rows, refund_rows, site_id, visitor, person, paid_at,
                                   landing, referrer)
                    if texted is not None:
                        texted[1] += 1
                        texted[2] += total
            visitors.append((visitor, site_id, f"demo-{visitor}", person, first, last, device))
        # Orders that matched no visitor: a landing page or nothing at all.
        for _ in range(max(len(order_rows) // 20, 0)):
            at = start + timedelta(seconds=rng.random() * span)
            src = rng.choices(SOURCES[:3], (5, 3, 2))[0] if rng.random() < 0.6 else None
            landing = _landing(rng, src, rng.choice(src.campaigns), "(not set)", "(not set)")[0] \
                if src else None
            _order(rng, ids, order_rows, refund_rows, site_id, None, None, at, landing, None)
        written = {"persons": persons, "visitors": visitors, "sessions": session_rows, "orders": order_rows,
                   "refunds": refund_rows}
        for table, rows in written.items():
            bulk_insert(conn, table, COLUMNS[table], rows)
            counts[table] += len(rows)
        if progress:
            progress(len(session_rows))
    follow_ids(conn, ID_TABLES)
    counts["costs"] = _costs(conn, rng, site_id, start.date(), end.date())
    counts["claims"] = _claims(conn, rng, site_id, sms_days)
    return counts


def _order(rng, ids, order_rows, refund_rows, site_id, visitor, person, at, landing, referrer) -> int:
    """Append one order (and maybe its refund); returns its total in minor units."""
    oid = ids.take("orders")
    total = max(int(math.exp(rng.gauss(math.log(7_500), 0.6))), 900)
    roll = rng.random()
    status = OrderStatus.PAID
    if roll < 0.03:
        status = OrderStatus.CANCELLED
    elif roll < 0.05:
        status = OrderStatus.PENDING
    elif roll < 0.08:
        status = OrderStatus.REFUNDED
    test = rng.random() < 0.005
    external = f"demo-{oid}"
    method = "visitor" if visitor else ("landing" if landing else None)
    order_rows.append((
        oid, site_id, "orders", external, at, at, at if status in PAID_STATUSES else None, status,
        test, "USD", total, method, visitor, person, landing, referrer, at, at,
    ))
    if status == OrderStatus.REFUNDED or (status == OrderStatus.PAID and rng.random() < 0.04):
        amount = total if status == OrderStatus.REFUNDED else total // rng.choice((2, 3, 4))
        refund_rows.append((ids.take("refunds"), site_id, "orders", f"{external}-r", external, oid, amount,
                            "USD", at + timedelta(days=rng.randrange(1, 10))))
    return total


def _costs(conn: Connection, rng: random.Random, site_id: int, first: date, last: date) -> int:
    """Daily spend of the paid sources for days first..last (replacing any spend of those days)."""
    conn.execute(delete(Cost).where(Cost.site_id == site_id, Cost.date >= first, Cost.date <= last))
    rows = []
    day = first
    while day <= last:
        for src in SOURCES:
            if not src.daily_cost:
                continue
            for campaign in src.campaigns:
                amount = int(src.daily_cost * rng.uniform(0.5, 1.5) / len(src.campaigns))
                rows.append({"site_id": site_id, "date": day, "source": src.source, "medium": src.medium,
                             "campaign": campaign, "content": "", "term": "", "currency": "USD",
                             "cost_minor": amount, "updated_at": datetime.now(UTC)})
        day += timedelta(days=1)
    if rows:
        conn.execute(Cost.__table__.insert(), rows)
    return len(rows)


# How much more than the visits they sent each messaging platform claims (Klaviyo for its email too):
# their windows credit orders a day after any message delivered and days after any click, whatever
# came in between.
CLAIM_FACTORS = {"attentive": (1.5, 1.9), "postscript": (1.3, 1.7), "klaviyo": (1.2, 1.5)}


def _claims(conn: Connection, rng: random.Random, site_id: int, sms_days: dict[tuple, list[int]]) -> int:
    """What each SMS platform's dashboard would claim per day and campaign: more orders and revenue
    than its landed visits brought, and more clicks than visits landed (links that lose their UTMs)."""
    rows = []
    for (day, platform, campaign), (landed, orders, revenue) in sorted(sms_days.items()):
        low, high = CLAIM_FACTORS.get(platform, (1.2, 1.5))
        factor = rng.uniform(low, high)
        rows.append({"site_id": site_id, "date": day, "platform": platform, "campaign": campaign,
                     "currency": "USD", "revenue_minor": int(revenue * factor),
                     "orders": round(orders * factor), "clicks": round(landed * rng.uniform(1.08, 1.3)),
                     "sends": landed * rng.randrange(20, 40)})
    if rows:
        conn.execute(Claim.__table__.insert(), rows)
    return len(rows)


def _wipe(conn: Connection, site_id: int) -> None:
    """Remove the demo site's previous rows so a rerun gives the same picture."""
    for model in (ReportRollup, ReportFirstSale, ReportSale, ReportSessions, ReportVisitors, ReportBuild,
                  Claim, Refund, Order, Cost, Pageview, TrackedSession, Visitor, Person):
        conn.execute(delete(model).where(model.site_id == site_id))


@click.command("demo")
@click.option("--days", default=60, show_default=True, type=click.IntRange(1, 730), help="Days of history.")
@click.option("--sessions", default=30_000, show_default=True, type=click.IntRange(1, 50_000_000))
@click.option("--orders", default=None, type=click.IntRange(0, 5_000_000),
              help="About how many orders [default: 3% of sessions].")
@click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same data.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]),
              help="The history's last local day (default: up to now).")
@click.option("--append", is_flag=True,
              help="Add new visitors' traffic and orders to the demo data instead of replacing it.")
def demo_command(days: int, sessions: int, orders: int | None, seed: int, until, append: bool) -> None:
    """Fill the site demo.example with realistic synthetic traffic, orders and spend."""
    @user_errors
    def run() -> None:
        with db_session() as session:
            site = session.scalar(select(Site).where(Site.domain == DEMO_DOMAIN))
            if site is None:
                site = create_site(session, DEMO_DOMAIN, timezone=DEMO_TIMEZONE, currency="USD")
            site_id, public_id, zone = site.id, site.public_id, site.timezone
            if until and until.date() > site_today(site):
                raise CommandError(f"--until {until.date()} is after today; give today or an earlier day.")
            conn = session.connection()
            if not append:
                _wipe(conn, site_id)
            with click.progressbar(length=sessions, label="Generating sessions", file=sys.stderr,
                                   show_pos=True) as bar:
                counts = generate(conn, site_id, days, sessions, orders if orders is not None
                                  else sessions * 3 // 100, seed, progress=bar.update, zone=zone,
                                  until=until.date() if until else None)
            # Fresh statistics, or the planner treats a bulk-loaded table as empty until autovacuum runs.
            conn.execute(text("ANALYZE"))
        click.echo(
            f"{'Added to' if append else 'Filled'} {DEMO_DOMAIN}: {counts['sessions']} sessions, "
            f"{counts['visitors']} visitors, {counts['orders']} orders, {counts['refunds']} refunds, "
            f"{counts['costs']} spend rows, {counts['claims']} platform claims "
            f"over {days} days."
        )
        click.echo("Run `tracker reports build --site demo.example --from ... --to ...` for the rollups.")
        click.echo(public_id)

    run()


