"""The sale rules: net revenue and the new-customer key, the same in Python and in SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tracker.sales import OrderStatus, customer_key, customer_sql, net_minor, net_sql


@pytest.mark.parametrize(
    ("status", "total", "refunded", "net"),
    [
        (OrderStatus.PAID, 5000, 0, 5000),
        (OrderStatus.PAID, 5000, None, 5000),
        (OrderStatus.PAID, 5000, 1250, 3750),
        (OrderStatus.PAID, 5000, 9000, 0),
        (OrderStatus.REFUNDED, 5000, 0, 0),  # refunded, amounts not sent: all of it
        (OrderStatus.REFUNDED, 5000, 2000, 3000),  # refunded, amounts sent: they say how much
    ],
)
def test_net_revenue_is_the_same_in_python_and_in_the_database(session, status, total, refunded, net):
    dialect = session.get_bind().dialect.name
    sql = net_sql(":status", ":total", "CAST(:refunded AS BIGINT)", dialect)
    in_database = session.scalar(text(f"SELECT {sql}"), {"status": str(status), "total": total,
                                                          "refunded": refunded})
    assert net_minor(status, total, refunded) == in_database == net


def test_a_customer_is_the_person_else_the_visitor_else_the_order(session):
    rows = [(1, 7, 3), (2, None, 3), (3, None, None), (4, 7, None), (5, None, 3)]
    values = " UNION ALL ".join(
        f"SELECT {o} AS o, {p or 'NULL'} AS p, {v or 'NULL'} AS v" for o, p, v in rows
    )
    firsts = session.execute(text(
        f"SELECT o, row_number() OVER (PARTITION BY {customer_sql('o', 'p', 'v')} ORDER BY o) = 1 "
        f"FROM ({values}) AS t ORDER BY o"
    )).all()
    seen = set()
    in_python = []
    for order, person, visitor in rows:
        key = customer_key(order, person, visitor)
        in_python.append((order, key not in seen))
        seen.add(key)
    assert [(o, bool(first)) for o, first in firsts] == in_python == [
        (1, True), (2, True), (3, True), (4, False), (5, False)]
