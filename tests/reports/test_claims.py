"""`tracker claims import`: the platforms' own attributed revenue, imported by the costs import's rules."""

from __future__ import annotations

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
