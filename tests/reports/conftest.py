"""A small builder for report scenarios: visitors, sessions, orders, refunds and costs, inserted directly."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from tracker.models import Cost, Order, Person, Refund, TrackedSession, Visitor
from tracker.touch import channel_for


def utc(text: str) -> datetime:
    """'2026-11-10 14:00' -> an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class World:
    def __init__(self, session, site):
        self.session = session
        self.site = site
        self._n = itertools.count(1)

    def person(self) -> int:
        person = Person(site_id=self.site.id)
        self.session.add(person)
        self.session.flush()
        return person.id

    def visitor(self, person: int | None = None) -> int:
        visitor = Visitor(site_id=self.site.id, visitor_key=f"v{next(self._n)}", person_id=person)
        self.session.add(visitor)
        self.session.flush()
        return visitor.id

    def visit(self, visitor: int, at: str, source="(direct)", medium="(none)", campaign="(not set)",
              content="(not set)", term="(not set)") -> int:
        started = utc(at)
        row = TrackedSession(
            site_id=self.site.id, visitor_id=visitor, started_at=started, last_seen_at=started,
            pageviews=1, utm_source=source, utm_medium=medium, utm_campaign=campaign,
            utm_content=content, utm_term=term, channel=channel_for(source, medium),
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def order(self, at: str, total: str, visitor: int | None = None, person: int | None = None,
              status="paid", test=False, landing_url=None, referrer=None, currency="USD") -> int:
        from tracker.money import to_minor

        created = utc(at)
        row = Order(
            site_id=self.site.id, provider="orders", external_id=f"o{next(self._n)}", created_at=created,
            paid_at=created if status == "paid" else None, status=status, is_test=test, currency=currency,
            total_minor=to_minor(total, currency), visitor_id=visitor, person_id=person,
            match_method="visitor" if visitor else None, landing_url=landing_url, referrer=referrer,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def refund(self, order: int, amount: str, at: str) -> int:
        from tracker.money import to_minor

        row = Refund(site_id=self.site.id, provider="orders", external_id=f"r{next(self._n)}",
                     order_external_id="x", order_id=order, amount_minor=to_minor(amount, "USD"),
                     currency="USD", created_at=utc(at))
        self.session.add(row)
        self.session.flush()
        return row.id

    def cost(self, day: str, source: str, medium: str, campaign: str, amount: str, content="", term=""):
        from datetime import date

        from tracker.money import to_minor

        self.session.add(Cost(site_id=self.site.id, date=date.fromisoformat(day), source=source,
                              medium=medium, campaign=campaign, content=content, term=term,
                              currency="USD", cost_minor=to_minor(amount, "USD")))
        self.session.flush()

    def commit(self):
        self.session.commit()


@pytest.fixture
def world(session, site) -> World:
    return World(session, site)


@pytest.fixture
def token(session) -> dict[str, str]:
    """The headers of a new API token that sees every site."""
    from tracker.credentials import hash_token, new_token
    from tracker.models import ApiToken

    value = new_token()
    session.add(ApiToken(name="ci", token_hash=hash_token(value), prefix=value[:8]))
    session.commit()
    return {"Authorization": f"Bearer {value}"}
