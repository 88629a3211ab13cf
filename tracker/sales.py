"""What a sale is: an order's statuses, which of them count, its net revenue and whose first
sale it is (a new customer). Each rule is written once in Python and once as SQL, side by side,
for the report paths that let the database compute it; a test holds the two to the same answers.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    """An order's state as the store last described it."""

    PENDING = "pending"  # placed, not paid yet: counts once paid
    PAID = "paid"
    REFUNDED = "refunded"  # all of it went back (its refunds may still be on their way)
    CANCELLED = "cancelled"
    VOIDED = "voided"  # deleted, failed or voided at the store

    @property
    def rank(self) -> int:
        """How far along an order is: of two states with the same store time, the later wins."""
        return _RANK[self]


_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.PAID: 1,
    OrderStatus.REFUNDED: 2,
    OrderStatus.CANCELLED: 3,
    OrderStatus.VOIDED: 3,
}

# Orders in these states are sales (test orders never are); pending ones wait until paid, the
# rest count zero.
COUNTED_STATUSES = (OrderStatus.PAID, OrderStatus.REFUNDED)
# Statuses whose order has been paid at some time (it has a paid_at).
PAID_STATUSES = (OrderStatus.PAID, OrderStatus.REFUNDED)


def net_minor(status: str, total_minor: int, refunded_minor: int | None) -> int:
    """An order's net revenue in minor units: its total less its refunds, never below zero; an
    order the store calls refunded without sending any refund amount nets to zero."""
    refunded = int(refunded_minor or 0)
    if status == OrderStatus.REFUNDED and not refunded:
        return 0
    return max(total_minor - refunded, 0)


def net_sql(status: str, total: str, refunded: str, dialect: str = "postgresql") -> str:
    """net_minor() as a SQL expression over the given column expressions."""
    larger = "greatest" if dialect == "postgresql" else "max"  # SQLite's two-argument max
    return (
        f"CASE WHEN {status} = '{OrderStatus.REFUNDED}' AND coalesce({refunded}, 0) = 0 THEN 0 "
        f"ELSE {larger}({total} - coalesce({refunded}, 0), 0) END"
    )


def counted_sql(status: str) -> str:
    """`status` is a counted one, as SQL."""
    return f"{status} IN ({', '.join(repr(str(s)) for s in COUNTED_STATUSES)})"


def customer_key(order_id: int, person_id: int | None, visitor_id: int | None) -> tuple[str, int]:
    """Who bought, for the new-customer rule: the person (every device that shared an email or
    phone), else the visitor, else the order alone. An order is a new customer's when it is the
    first counted sale with net revenue of its customer key, ever."""
    if person_id is not None:
        return ("p", person_id)
    if visitor_id is not None:
        return ("v", visitor_id)
    return ("o", order_id)


def customer_id(order_id: int, person_id: int | None, visitor_id: int | None) -> int:
    """customer_key() as one integer: the person's, else the visitor's, else the order's id, each
    kind kept apart by the remainder after dividing by 3 (as customer_id_sql)."""
    if person_id is not None:
        return 3 * person_id
    if visitor_id is not None:
        return 3 * visitor_id + 1
    return 3 * order_id + 2


def customer_id_sql(order_id: str, person_id: str, visitor_id: str) -> str:
    """customer_id() as SQL."""
    return (f"CASE WHEN {person_id} IS NOT NULL THEN 3 * {person_id} "
            f"WHEN {visitor_id} IS NOT NULL THEN 3 * {visitor_id} + 1 ELSE 3 * {order_id} + 2 END")


def customer_sql(order_id: str, person_id: str, visitor_id: str) -> str:
    """customer_key() as the SQL expressions of a window's PARTITION BY."""
    return (
        f"{person_id}, CASE WHEN {person_id} IS NULL THEN {visitor_id} END, "
        f"CASE WHEN {person_id} IS NULL AND {visitor_id} IS NULL THEN {order_id} END"
    )
