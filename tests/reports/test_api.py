"""The JSON API: authentication, bad parameters, the report's shape, and spend uploads."""

import pytest
from sqlalchemy import select

from tracker.models import Cost


def test_report_needs_a_token(client, site):
    response = client.get(f"/api/reports/roi?site={site.public_id}")
    assert response.status_code == 401
    assert "error" in response.get_json()
    bad = client.get(f"/api/reports/roi?site={site.public_id}", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


@pytest.mark.parametrize("query", [{"model": "everything"}, {"lookback": "400"}, {"from": "yesterday"},
                                   {"by": "country"}, {"site": "unknown.example"}, {"to": "9999-12-31"},
                                   {"from": "0001-01-01", "to": "0001-01-02"}])
def test_bad_parameters_answer_400(client, site, token, query):
    response = client.get("/api/reports/roi", query_string={"site": site.public_id, **query}, headers=token)
    assert response.status_code == 400
    assert response.get_json()["error"].endswith(".")


def test_report_shape(client, world, token):
    visitor = world.visitor()
    world.visit(visitor, "2026-11-20 15:00", "attentive", "sms", "welcome")
    world.order("2026-11-20 15:10", "812.50", visitor=visitor)
    world.cost("2026-11-20", "attentive", "sms", "welcome", "150.00")
    world.commit()
    response = client.get(f"/api/reports/roi?site={world.site.domain}&from=2026-11-20&to=2026-11-20",
                          headers=token)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"site", "from", "to", "model", "lookback", "date_basis", "currency", "built_through",
                         "rows", "totals"}
    assert body["date_basis"] == "order"
    assert (body["site"], body["from"], body["model"], body["lookback"]) == (
        world.site.public_id, "2026-11-20", "last_click", 30)
    assert body["rows"] == [{
        "source": "attentive", "medium": "sms", "campaign": "welcome", "sessions": 1, "visitors": 1,
        "orders": "1.00", "revenue": "812.50", "new_customers": "1.00", "cost": "150.00", "roi": "4.42",
        "roas": "5.42", "cpa": "150.00", "aov": "812.50", "conversion_rate": "1.0000",
    }]
    assert body["totals"]["revenue"] == "812.50" and body["totals"]["sessions"] == 1


def test_post_costs_replaces_the_same_key(client, session, site, token):
    rows = [{"date": "2026-11-20", "source": " Attentive ", "medium": "SMS", "campaign": "Welcome",
             "cost": "12.50"}]
    body = {"site": site.public_id, "rows": rows}
    assert client.post("/api/costs", json=body, headers=token).get_json() == {"saved": 1}
    rows[0]["cost"] = "20.00"
    assert client.post("/api/costs", json=body, headers=token).status_code == 200
    saved = session.scalars(select(Cost)).all()
    assert [(c.source, c.medium, c.campaign, c.cost_minor) for c in saved] == [
        ("attentive", "sms", "welcome", 2000)
    ]


def test_post_costs_rejects_bad_rows_and_missing_tokens(client, site, token):
    rows = [{"date": "2026-11-20", "source": "attentive", "medium": "sms", "campaign": "x", "cost": "1"},
            {"date": "20/11/2026", "source": "attentive", "medium": "sms", "campaign": "x", "cost": "-3"}]
    response = client.post("/api/costs", json={"site": site.public_id, "rows": rows}, headers=token)
    assert response.status_code == 400
    assert response.get_json()["errors"][0].startswith("Row 1:")
    assert client.post("/api/costs", json={"site": site.public_id, "rows": rows}).status_code == 401


def test_post_costs_reads_json_numbers_exactly(client, session, site, token):
    """Automation often sends numbers: 12.3 is twelve dollars thirty, never a float's neighbour."""
    rows = [{"date": "2026-11-20", "source": "attentive", "medium": "sms", "campaign": "a", "cost": 12.3},
            {"date": "2026-11-20", "source": "attentive", "medium": "sms", "campaign": "b", "cost": 7},
            {"date": "2026-11-20", "source": "attentive", "medium": "sms", "campaign": "c", "cost": 1e2}]
    response = client.post("/api/costs", json={"site": site.public_id, "rows": rows}, headers=token)
    assert response.get_json() == {"saved": 3}
    saved = session.scalars(select(Cost).order_by(Cost.campaign)).all()
    assert [(c.campaign, c.cost_minor) for c in saved] == [("a", 1230), ("b", 700), ("c", 10000)]


@pytest.mark.parametrize("cost", ["1e30", "1e999999", "10000000000000", 1e30, "0.001", 12.345,
                                  "1.0000000000000000000000000000001", "NaN", "-1"])
def test_post_costs_refuses_impossible_amounts_with_a_clear_error(client, session, site, token, cost):
    rows = [{"date": "2026-11-20", "source": "attentive", "medium": "sms", "campaign": "a", "cost": cost}]
    response = client.post("/api/costs", json={"site": site.public_id, "rows": rows}, headers=token)
    assert response.status_code == 400
    assert response.get_json()["errors"][0].startswith("Row 0: ")
    assert session.scalars(select(Cost)).all() == []
