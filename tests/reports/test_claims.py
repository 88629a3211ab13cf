"""`tracker claims import`: the platforms' own attributed revenue, imported by the costs import's rules."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from reports.models import Claim
from tracker.cli import main

HEADER = "date,platform,campaign,attributed_revenue,attributed_orders,clicks,sends,currency\n"


def _import(runner, tmp_path, text: str, site_ref: str):
    path = tmp_path / "claims.csv"
    path.write_text(text, encoding="utf-8")
    return runner.invoke(main, ["claims", "import", str(path), "--site", site_ref])


def _claims(session):
    session.rollback()
    columns = (Claim.date, Claim.platform, Claim.campaign, Claim.revenue_minor, Claim.orders, Claim.clicks,
               Claim.sends)
    return session.execute(select(*columns).order_by(Claim.platform, Claim.campaign)).all()


def test_claims_are_imported_with_normalised_keys_and_replaced_on_reimport(runner, site, session, tmp_path):
    text = HEADER + ("2026-11-30, Attentive ,Black  Friday,1234.50,20,\"1,200\",9000,USD\n"
                     "2026-11-30,postscript,welcome,99,,,,\n")
    result = _import(runner, tmp_path, text, site.public_id)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Imported 2 claim(s) for shop.example (1333.50 USD claimed in total)."
    rows = _claims(session)
    assert [(str(d), p, c, r, o, k, s) for d, p, c, r, o, k, s in rows] == [
        ("2026-11-30", "attentive", "black friday", 123450, 20, 1200, 9000),
        ("2026-11-30", "postscript", "welcome", 9900, None, None, None),
    ]
    again = _import(runner, tmp_path, HEADER + "2026-11-30,ATTENTIVE,black friday,10.00,1,5,6,\n",
                    site.public_id)
    assert again.exit_code == 0
    assert [r[3] for r in _claims(session)] == [1000, 9900]  # replaced, the other kept


def test_a_bad_line_stops_the_import_and_names_its_line(runner, site, session, tmp_path):
    text = HEADER + ("2026-11-30,attentive,a,10,,,,\n"
                     "2026-13-01,attentive,b,10,,,,\n"
                     "2026-11-30,,c,10,,,,\n"
                     "2026-11-30,attentive,d,ten,,,,\n"
                     "2026-11-30,attentive,e,10,,many,,\n"
                     "2026-11-30,attentive,f,10,,,,EUR\n")
    result = _import(runner, tmp_path, text, site.public_id)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].endswith("Nothing was imported; fix these lines:")
    assert [line.split(":")[0] for line in lines[1:]] == ["Line 3", "Line 4", "Line 5", "Line 6", "Line 7"]
    assert _claims(session) == []
    missing = _import(runner, tmp_path, "date,platform,campaign\n2026-11-30,a,b\n", site.public_id)
    assert missing.exit_code == 1 and "missing column(s) attributed_revenue" in missing.output


def test_the_claims_report_puts_each_claim_beside_the_stores_figures(runner, client, session, tmp_path):
    """Two SMS campaigns with orders the tracker credits; the platforms claim more."""
    import json as jsonlib
    from datetime import UTC, datetime, timedelta

    from tests.pages.conftest import csrf_from
    from tests.webhooks.conftest import ORDERS_SECRET, standard_headers
    from tracker.credentials import hash_password, hash_token, new_token
    from tracker.models import ApiToken, Role, User
    from tracker.sites import add_secret, create_site

    site = create_site(session, "shop.example", timezone="UTC", currency="USD")
    add_secret(session, site, "orders", ORDERS_SECRET)
    token = new_token()
    session.add(ApiToken(name="r", token_hash=hash_token(token), prefix=token[:8]))
    session.add(User(email="owner@shop.example", password_hash=hash_password("x" * 12), role=Role.ADMIN))
    session.commit()
    day = (datetime.now(UTC) - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    orders = (("attentive", "sms", "welcome", "100.00"), ("attentive", "sms", "welcome", "50.00"),
              ("attentive", "sms", "=cmd|' /C calc'!A0", "20.00"),
              # Klaviyo's claim covers its email as well as its texts.
              ("klaviyo", "email", "abandoned-cart", "30.00"), ("klaviyo", "sms", "abandoned-cart", "15.00"))
    for n, (source, medium, campaign, total) in enumerate(orders):
        body = jsonlib.dumps({"id": f"C-{n}", "created_at": day.isoformat(), "total": total,
                              "currency": "USD", "status": "paid",
                              "landing_url": f"https://shop.example/?utm_source={source}"
                              f"&utm_medium={medium}&utm_campaign={campaign}"}).encode()
        assert client.post(f"/webhooks/orders/{site.public_id}", data=body,
                           headers=standard_headers(body)).status_code == 200
    d = day.date()
    claims = HEADER + (f"{d},attentive,welcome,450.00,9,40,1000,\n{d},postscript,winback,80,2,,,\n"
                       f"{d},attentive,\"=cmd|' /C calc'!A0\",30,,,,\n{d},Klaviyo,Abandoned-Cart,90,3,,,\n")
    assert _import(runner, tmp_path, claims, site.public_id).exit_code == 0
    query = f"site={site.public_id}&from={d}&to={d}"
    bearer = {"Authorization": f"Bearer {token}"}
    report = client.get(f"/api/reports/claims?{query}", headers=bearer).get_json()
    rows = {(r["platform"], r["campaign"]): r for r in report["rows"]}
    welcome = rows[("attentive", "welcome")]
    assert (welcome["claimed_revenue"], welcome["claimed_orders"], welcome["tracked_revenue"],
            welcome["tracked_orders"], welcome["over_claim"]) == ("450.00", 9, "150.00", "2.00", "3.00")
    assert (welcome["clicks"], welcome["landed_sessions"], welcome["landed_share"]) == (40, 0, "0.00")
    winback = rows[("postscript", "winback")]
    assert (winback["tracked_revenue"], winback["over_claim"], winback["clicks"]) == ("0.00", None, None)
    klaviyo = rows[("klaviyo", "abandoned-cart")]
    assert (klaviyo["tracked_revenue"], klaviyo["tracked_orders"], klaviyo["over_claim"]) == (
        "45.00", "2.00", "2.00")
    assert report["totals"] == {"claimed_revenue": "650.00", "net_revenue": "215.00",
                                "claimed_share_of_net": "3.02"}
    assert sum(Decimal(r["claimed_revenue"]) for r in report["rows"]) == Decimal("650.00")
    formula = rows[("attentive", "=cmd|' /c calc'!a0")]
    assert (formula["tracked_revenue"], formula["over_claim"]) == ("20.00", "1.50")
    # The page says what the ratio means; the CSV guards cells a spreadsheet would run.
    login = csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"email": "owner@shop.example", "password": "x" * 12, "csrf_token": login})
    page = client.get(f"/reports/claims?{query}").get_data(as_text=True)
    assert "claims three times" in page and "450.00" in page and "3.00" in page
    assert 'href="/reports/claims' in client.get(f"/reports/roi?{query}").get_data(as_text=True)
    csv_text = client.get(f"/reports/claims.csv?{query}").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("platform,campaign,claimed_revenue")
    assert "attentive,welcome,450.00,9,150.00,2.00,3.00,40,0,0.00" in csv_text
    assert "'=cmd" in csv_text and "\n=cmd" not in csv_text and ",=cmd" not in csv_text
