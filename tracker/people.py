"""People: joining visitors (devices) that share an email or phone into one person."""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.db import utcnow
from tracker.models import Identity, Order, Person, Visitor


def person_for_identity(session: Session, site_id: int, kind: str, value_hash: str) -> int | None:
    """The person already known by this identity hash, if any."""
    return session.scalar(
        select(Identity.person_id).where(
            Identity.site_id == site_id, Identity.kind == kind, Identity.value_hash == value_hash
        )
    )


def link_identity(session: Session, site_id: int, visitor_id: int, kind: str, value_hash: str) -> int:
    """Attach an identity to a visitor's person, merging two persons when they meet.

    Returns the person id. The caller owns the transaction; concurrent links of the same
    identity are resolved by the unique constraint on identities, not by luck.
    """
    visitor_person = session.scalar(
        select(Visitor.person_id).where(Visitor.site_id == site_id, Visitor.id == visitor_id))
    known = person_for_identity(session, site_id, kind, value_hash)
    if known is None:
        person_id = visitor_person or _new_person(session, site_id)
        try:
            with session.begin_nested():
                session.add(
                    Identity(site_id=site_id, kind=kind, value_hash=value_hash, person_id=person_id)
                )
        except IntegrityError:  # another request linked it first: join that person
            known = person_for_identity(session, site_id, kind, value_hash)
    if known is not None:
        person_id = known
        if visitor_person is not None and visitor_person != known:
            person_id = merge_persons(session, site_id, visitor_person, known)
    session.execute(update(Visitor).where(Visitor.site_id == site_id, Visitor.id == visitor_id)
                    .values(person_id=person_id))
    if visitor_person != person_id:
        touch_orders(session, site_id, person_id)
    return person_id


def merge_persons(session: Session, site_id: int, a: int, b: int) -> int:
    """Fold two persons of a site into the older one (lower id); returns the survivor."""
    keep, drop = min(a, b), max(a, b)
    for model in (Visitor, Identity, Order):
        session.execute(update(model).where(model.site_id == site_id, model.person_id == drop)
                        .values(person_id=keep))
    session.execute(delete(Person).where(Person.site_id == site_id, Person.id == drop))
    touch_orders(session, site_id, keep)
    return keep


def touch_orders(session: Session, site_id: int, person_id: int) -> None:
    """Mark a person's orders changed: their touches now include other devices (report rollups)."""
    devices = select(Visitor.id).where(Visitor.site_id == site_id, Visitor.person_id == person_id)
    session.execute(
        update(Order)
        .where(Order.site_id == site_id, or_(Order.person_id == person_id, Order.visitor_id.in_(devices)))
        .values(updated_at=utcnow())
    )


def _new_person(session: Session, site_id: int) -> int:
    person = Person(site_id=site_id)
    session.add(person)
    session.flush()
    return person.id
