"""Who may see what (CONTRACT: "Who may see what"): two sites, an admin, a viewer of site A, a
token of site B and a token of every site, through HTTP and the command line.

A site that a user or token may not see must answer exactly like a site that does not exist, on
every route; revocation takes effect on the next request.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from tests.pages.conftest import csrf_from
from tracker.cli import main
from tracker.models import ApiToken, Cost
from tracker.sites import create_site

PASSWORD = "correct horse battery"
ADMIN = "owner@agency.example"
VIEWER = "client-a@shop-a.example"
NOWHERE = "s_doesnotexist0000"
MARKER = {"a": "only-a-campaign", "b": "only-b-campaign"}


class World:
    def __init__(self, runner, session):
        self.runner = runner
        self.a = create_site(session, "shop-a.example", timezone="UTC", currency="USD")
        self.b = create_site(session, "shop-b.example", timezone="UTC", currency="USD")
        yesterday = date.today() - timedelta(days=1)
        for site, key in ((self.a, "a"), (self.b, "b")):
            session.add(Cost(site_id=site.id, date=yesterday, source="attentive", medium="sms",
                             campaign=MARKER[key], currency="USD", cost_minor=1234))
        session.commit()
        self.admin = self.cli(["users", "add", ADMIN], input=PASSWORD + "\n")
        self.viewer = self.cli(["users", "add", VIEWER, "--site", self.a.domain], input=PASSWORD + "\n")
        self.token_b = self.cli(["tokens", "add", "site b feed", "--site", self.b.public_id]).splitlines()[-1]
        self.token_all = self.cli(["tokens", "add", "agency"]).splitlines()[-1]

    def cli(self, args: list[str], input: str | None = None, exit_code: int = 0) -> str:
        result = self.runner.invoke(main, args, input=input)
        assert result.exit_code == exit_code, result.output
        return result.output


@pytest.fixture
def world(runner, session, app) -> World:
    return World(runner, session)


def log_in(client, email: str) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answer(client, path: str, **kwargs) -> tuple[int, str]:
    response = client.get(path, **kwargs)
    return response.status_code, response.get_data(as_text=True)


def _same_as_missing(client, path: str, hidden, **kwargs) -> None:
    """`path` with the hidden site's id answers as with an id nobody has, and shows nothing of it."""
    status, body = answer(client, path.format(site=hidden.public_id), **kwargs)
    missing_status, missing_body = answer(client, path.format(site=NOWHERE), **kwargs)
    assert status == missing_status, path
    assert _neutral(body, hidden.public_id) == _neutral(missing_body, NOWHERE), path
    for secret in (hidden.domain, MARKER["b"] if hidden.domain.startswith("shop-b") else MARKER["a"]):
        assert secret not in body, f"{path} shows {secret}"


_TOKEN = re.compile(r'name="csrf_token" value="[^"]+"')


def _neutral(body: str, ref: str) -> str:
    return _TOKEN.sub("", body.replace(ref, "<site>"))


# --- pages, CSV and JSON ---------------------------------------------------------------------

PAGES = [
    "/?site={site}",
    "/reports/roi?site={site}&preset=last7",
    "/reports/roi.csv?site={site}&preset=last7",
    "/reports/compare?site={site}&preset=last7",
    "/reports/compare.csv?site={site}&preset=last7",
    "/sms/links?site={site}",
    "/sms/hygiene?site={site}",
    "/costs?site={site}",
    "/api/reports/roi?site={site}&preset=last7",
]


def test_a_viewer_sees_their_site_and_nothing_of_another(world, app):
    client = app.test_client()
    log_in(client, VIEWER)
    for path in PAGES:
        status, body = answer(client, path.format(site=world.a.public_id))
        assert status == 200, path
        assert world.b.domain not in body and MARKER["b"] not in body, path
        _same_as_missing(client, path, world.b)
    # The site picker offers only their site; the page they land on is theirs.
    status, body = answer(client, "/reports/roi?preset=last7")
    assert world.a.domain in body and world.b.domain not in body
    assert MARKER["a"] in answer(client, f"/reports/roi?site={world.a.public_id}&preset=last7")[1]


def test_an_admin_sees_every_site(world, app):
    client = app.test_client()
    log_in(client, ADMIN)
    for site, key in ((world.a, "a"), (world.b, "b")):
        status, body = answer(client, f"/reports/roi?site={site.public_id}&preset=last7")
        assert status == 200 and MARKER[key] in body
    body = answer(client, "/reports/roi?preset=last7")[1]
    assert world.a.domain in body and world.b.domain in body


def test_a_token_of_one_site_sees_only_that_site(world, client):
    headers = bearer(world.token_b)
    status, body = answer(client, f"/api/reports/roi?site={world.b.public_id}&preset=last7", headers=headers)
    assert status == 200 and MARKER["b"] in body
    _same_as_missing(client, "/api/reports/roi?site={site}&preset=last7", world.a, headers=headers)


def test_a_token_of_every_site_sees_both(world, client):
    for site, key in ((world.a, "a"), (world.b, "b")):
        status, body = answer(client, f"/api/reports/roi?site={site.public_id}&preset=last7",
                              headers=bearer(world.token_all))
        assert status == 200 and MARKER[key] in body


# --- ingestion APIs --------------------------------------------------------------------------


def _costs(client, token: str, site_ref: str):
    rows = [{"date": str(date.today() - timedelta(days=2)), "source": "attentive", "medium": "sms",
             "campaign": "pushed", "cost": "5.00"}]
    return client.post("/api/costs", json={"site": site_ref, "rows": rows}, headers=bearer(token))


def test_ingestion_apis_refuse_a_site_the_token_may_not_see_as_unknown(world, client, session):
    hidden = _costs(client, world.token_b, world.a.public_id)
    missing = _costs(client, world.token_b, NOWHERE)
    assert hidden.status_code == missing.status_code == 400
    assert hidden.get_json()["error"].replace(world.a.public_id, "<site>") == \
        missing.get_json()["error"].replace(NOWHERE, "<site>")
    assert _costs(client, world.token_b, world.b.public_id).status_code == 200

    def event(site_ref: str) -> dict:
        body = {"events": [{"site": site_ref, "visitor": "v_api_1", "url": "https://shop-a.example/x",
                            "event": "pageview", "user_agent": "Mozilla/5.0 (Macintosh) Safari/605.1.15"}]}
        response = client.post("/api/events", data=json.dumps(body), headers=bearer(world.token_b),
                               content_type="application/json")
        assert response.status_code == 202
        return response.get_json()

    hidden_event, missing_event = event(world.a.public_id), event(NOWHERE)
    assert hidden_event["accepted"] == missing_event["accepted"] == 0
    assert hidden_event["rejected"][0]["error"].replace(world.a.public_id, "<site>") == \
        missing_event["rejected"][0]["error"].replace(NOWHERE, "<site>")
    session.expire_all()
    pushed = session.scalars(select(Cost.site_id).where(Cost.campaign == "pushed")).all()
    assert pushed == [world.b.id]


def test_a_viewer_cannot_save_costs_for_another_site(world, app, session):
    client = app.test_client()
    log_in(client, VIEWER)
    token = csrf_from(client.get(f"/costs?site={world.a.public_id}").get_data(as_text=True))
    form = {"csrf_token": token, "date": str(date.today() - timedelta(days=3)), "source": "attentive",
            "medium": "sms", "campaign": "sneaky", "cost": "9.99"}
    client.post(f"/costs?site={world.b.public_id}", data=form)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Cost).where(Cost.campaign == "sneaky",
                                                                        Cost.site_id == world.b.id)) == 0


def test_every_route_shows_a_viewer_nothing_of_another_site(world, app):
    """Walks every registered route, so that a route added later cannot forget the check."""
    client = app.test_client()
    log_in(client, VIEWER)
    token = csrf_from(client.get("/costs").get_data(as_text=True))
    values = {"provider": "shopify", "site_ref": world.b.public_id, "filename": "app.css", "path": "x"}
    walked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "pages.logout":
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", values[name])
            path = re.sub(rf"<[^>]*:{name}>", values[name], path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            query = {"site": world.b.public_id, "preset": "last7"}
            if method == "GET":
                response = client.get(path, query_string=query)
            else:
                response = client.open(path, method=method, query_string=query,
                                       data={"csrf_token": token, "site": world.b.public_id})
            body = response.get_data(as_text=True)
            response.close()
            assert MARKER["b"] not in body and world.b.domain not in body, f"{method} {path}"
            walked += 1
    assert walked >= 20


# --- revocation ------------------------------------------------------------------------------


def _still_in(client, world) -> bool:
    response = client.get(f"/reports/roi?site={world.a.public_id}&preset=last7")
    if response.status_code == 302:
        assert "/login" in response.headers["Location"]
        return False
    assert response.status_code == 200
    return True


@pytest.mark.parametrize("change", ["revoke", "password", "remove"])
def test_a_change_to_the_account_ends_its_sessions_at_once(world, app, change):
    client = app.test_client()
    log_in(client, VIEWER)
    assert _still_in(client, world)
    if change == "revoke":
        world.cli(["users", "revoke", VIEWER, world.a.domain])
    elif change == "password":
        world.cli(["users", "password", VIEWER], input="a whole new password\n")
    else:
        world.cli(["users", "remove", VIEWER])
    assert not _still_in(client, world)
    if change == "password":  # the new password works, the old one does not
        token = csrf_from(client.get("/login").get_data(as_text=True))
        old = client.post("/login", data={"email": VIEWER, "password": PASSWORD, "csrf_token": token})
        assert old.status_code == 401
        token = csrf_from(client.get("/login").get_data(as_text=True))
        new = client.post("/login", data={"email": VIEWER, "password": "a whole new password",
                                          "csrf_token": token})
        assert new.status_code == 302 and _still_in(client, world)


def test_granting_a_site_shows_it_without_logging_in_again(world, app):
    client = app.test_client()
    log_in(client, VIEWER)
    assert world.b.domain not in answer(client, "/reports/roi?preset=last7")[1]
    world.cli(["users", "grant", VIEWER, world.b.domain])
    status, body = answer(client, f"/reports/roi?site={world.b.public_id}&preset=last7")
    assert status == 200 and MARKER["b"] in body


def test_a_revoked_token_is_refused_on_its_next_request(world, client):
    path = f"/api/reports/roi?site={world.b.public_id}&preset=last7"
    assert client.get(path, headers=bearer(world.token_b)).status_code == 200
    world.cli(["tokens", "revoke", "site b feed"])
    assert client.get(path, headers=bearer(world.token_b)).status_code == 401
    # By its first characters too.
    world.cli(["tokens", "revoke", world.token_all[:8]])
    assert client.get(path, headers=bearer(world.token_all)).status_code == 401


# --- the commands ----------------------------------------------------------------------------


def test_users_add_rules(world):
    out = world.cli(["users", "add", "someone@else.example"], input=PASSWORD + "\n", exit_code=1)
    assert out.strip() == "Say what the user may see: --site SITE (one or more), or --admin for every site."
    out = world.cli(["users", "add", "x@y.example", "--admin", "--site", world.a.domain],
                    input=PASSWORD + "\n", exit_code=1)
    assert "either --admin or --site" in out
    assert "an admin: sees every site" in world.admin
    assert f"a viewer of {world.a.domain}" in world.viewer
    out = world.cli(["users", "grant", "nobody@x.example", world.a.domain], exit_code=1)
    assert out.strip() == "There is no user nobody@x.example; `tracker users list` shows them."
    out = world.cli(["users", "grant", VIEWER, "no-such-site.example"], exit_code=1)
    assert "Traceback" not in out and out.count("\n") == 1


def test_users_list_and_tokens_list(world, session):
    world.cli(["users", "grant", VIEWER, world.b.domain])
    listing = world.cli(["users", "list"])
    lines = listing.splitlines()
    assert lines[0].split() == ["email", "role", "sites", "last", "login"]
    assert re.search(rf"{re.escape(ADMIN)}\s+admin\s+\(every site\)\s+never", listing)
    assert re.search(rf"{re.escape(VIEWER)}\s+viewer\s+shop-a.example, shop-b.example\s+never", listing)
    tokens = world.cli(["tokens", "list"])
    assert re.search(r"agency\s+\S{8}…\s+\(every site\)", tokens)
    assert re.search(r"site b feed\s+\S{8}…\s+shop-b.example\s+\S+ \S+ UTC\s+never", tokens)
    for clear in (world.token_all, world.token_b):
        assert clear not in tokens and clear[:12] not in tokens
    assert "every site" in world.cli(["tokens", "add", "another"]).splitlines()[0]
    assert session.scalar(select(func.count()).select_from(ApiToken)) == 3


def test_every_change_and_login_leaves_one_audit_line_without_secrets(world, app, caplog):
    caplog.set_level(logging.INFO, logger="tracker.audit")
    world.cli(["users", "grant", VIEWER, world.b.domain])
    world.cli(["tokens", "revoke", "agency"])
    log_in(app.test_client(), VIEWER)
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"email": VIEWER, "password": "wrong " + PASSWORD, "csrf_token": token},
                environ_base={"REMOTE_ADDR": "198.51.100.23"})
    token = csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"email": "hunter2-typed-here", "password": "x", "csrf_token": token})
    lines = [r.getMessage() for r in caplog.records if r.name == "tracker.audit"]
    assert f"users.grant user={VIEWER} site={world.b.domain}" in lines
    assert "tokens.revoke token=agency" in lines
    assert any(line.startswith(f"login user={VIEWER} ip=") for line in lines)
    assert any(line.startswith(f"login failed user={VIEWER} ip=") for line in lines)
    assert any(line.startswith("login failed user=(unknown) ip=") for line in lines)
    text = "\n".join(lines)
    for secret in (PASSWORD, "hunter2", "198.51.100.23", world.token_all, world.token_b, "127.0.0.1"):
        assert secret not in text
