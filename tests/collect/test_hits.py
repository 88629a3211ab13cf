"""Page views acknowledged on their append to `hits`: sessionised later, exactly once, by any process."""

import json
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from tracker.collect.hits import Hit
from tracker.collect.sessionise import append, drain, write
from tracker.db import get_engine
from tracker.models import Pageview, TrackedSession, Visitor, WaitingHit

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SMS = "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign=vip"
MAIL = "https://shop.example/?utm_source=klaviyo&utm_medium=email"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


def visit(site, key, minutes, url="https://shop.example/p", referrer=None):
    return Hit(
        site.id, site.domain, key, T0 + timedelta(minutes=minutes), True, url, referrer, "Page", 390,
        "mobile", "Mobile Safari", "iOS",
    )  # fmt: skip


def journey(site, key):
    """Hits that exercise every rule: campaign landing, a 31-minute gap, a new campaign, late arrivals."""
    return [
        visit(site, key, 0, SMS, "https://www.google.com/"),
        visit(site, key, 5),
        visit(site, key, 36),
        visit(site, key, 40, MAIL),
        visit(site, key, 41),
        visit(site, key, 2),  # late: lands in the first session
    ]


def sessions_of(session, key):
    session.rollback()
    rows = session.execute(
        select(
            TrackedSession.started_at, TrackedSession.last_seen_at, TrackedSession.pageviews,
            TrackedSession.utm_source, TrackedSession.utm_medium, TrackedSession.utm_campaign,
            TrackedSession.channel, TrackedSession.device_type,
        )
        .join(Visitor, and_(Visitor.site_id == TrackedSession.site_id,
                            Visitor.id == TrackedSession.visitor_id))
        .where(Visitor.visitor_key == key)
        .order_by(TrackedSession.started_at)
    )  # fmt: skip
    return [tuple(row) for row in rows]


def waiting(session):
    session.rollback()
    return session.scalar(select(func.count()).select_from(WaitingHit))


def test_waiting_hits_become_the_sessions_a_direct_write_makes(app, session, site):
    engine = get_engine(app)
    write(engine, journey(site, "direct"))
    # Appended in two groups, the second with the late page view, as two commits would leave them.
    hits = journey(site, "queued")
    append(engine, hits[:3])
    append(engine, hits[3:])
    assert waiting(session) == 6
    assert sessions_of(session, "queued") == []
    assert drain(engine) == 6
    assert waiting(session) == 0
    expected = sessions_of(session, "direct")
    assert [s[2] for s in expected] == [3, 1, 2]
    assert [s[3] for s in expected] == ["attentive", "(direct)", "klaviyo"]
    assert sessions_of(session, "queued") == expected


def test_a_new_writer_first_claims_hits_a_killed_process_left(app, client, session, site):
    # A worker killed after acknowledging these left them in `hits`, unsessionised.
    append(get_engine(app), [visit(site, "orphan", minute) for minute in range(3)])
    response = client.post(
        "/collect",
        data=json.dumps({"site": site.public_id, "url": "https://shop.example/", "visitor": "v-1"}),
        headers={"User-Agent": IPHONE},
    )
    assert response.status_code == 202
    assert waiting(session) == 0
    [orphans] = sessions_of(session, "orphan")
    assert orphans[2] == 3
    assert len(sessions_of(session, "v-1")) == 1


def test_concurrent_claimers_sessionise_every_hit_once(app, session, site):
    engine = get_engine(app)
    keys = [f"visitor-{n}" for n in range(40)]
    for minute in range(0, 60, 2):  # 30 batches of 40 visitors, some crossing a 30-minute gap
        append(engine, [visit(site, key, minute * (1 + n % 2)) for n, key in enumerate(keys)])
    errors = []

    def claim():
        try:
            drain(engine, limit=97)
        except Exception as exc:  # surfaced below: a claimer must never fail
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert waiting(session) == 0
    assert session.scalar(select(func.count()).select_from(Pageview)) == 30 * 40
    assert session.scalar(select(func.sum(TrackedSession.pageviews))) == 30 * 40
    # Even visitors browse every 2 minutes: one session; odd ones every 4 minutes, until minute 116.
    assert len(sessions_of(session, "visitor-0")) == 1
    assert [s[2] for s in sessions_of(session, "visitor-1")] == [30]


def test_hits_of_a_deleted_site_are_dropped(app, session, site):
    from tracker.sites import create_site

    other = create_site(session, "gone.example")
    session.commit()
    engine = get_engine(app)
    append(engine, [visit(other, "x", 0), visit(site, "y", 0)])
    session.delete(other)
    session.commit()
    assert drain(engine) == 2
    assert waiting(session) == 0
    assert session.scalar(select(func.count()).select_from(Pageview)) == 1


def test_many_clients_at_once_every_acknowledged_page_view_is_stored(app, session, site):
    posted = []

    def browse(n):
        client = app.test_client()
        for page in range(25):
            body = {"site": site.public_id, "url": f"https://shop.example/p{page}", "visitor": f"c-{n}"}
            response = client.post("/collect", data=json.dumps(body), headers={"User-Agent": IPHONE})
            posted.append(response.status_code)

    threads = [threading.Thread(target=browse, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert posted == [202] * 200
    app.extensions["tracker.collect.writer"].close()
    drain(get_engine(app))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Pageview)) == 200
    assert [s[2] for n in range(8) for s in sessions_of(session, f"c-{n}")] == [25] * 8


def _app_on(url, tmp_path):
    from tests.conftest import TEST_SECRET_KEY
    from tracker.app import create_app

    return create_app(
        {
            "TRACKER_DATABASE_URL": url,
            "TRACKER_SECRET_KEY": TEST_SECRET_KEY,
            "TRACKER_INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )


def _post(app, site_id):
    body = {"site": site_id, "url": "https://shop.example/", "visitor": "v-1"}
    return app.test_client().post("/collect", data=json.dumps(body), headers={"User-Agent": IPHONE})


def test_a_database_that_refuses_the_write_gets_503_not_202(make_database, tmp_path):
    from sqlalchemy import text

    from tracker.migrate import upgrade
    from tracker.sites import create_site

    url = make_database("refusing")
    upgrade(url)
    broken = _app_on(url, tmp_path)
    engine = get_engine(broken)
    with Session(engine) as db:
        public_id = create_site(db, "shop.example").public_id
        db.commit()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE pageviews"))
        conn.execute(text("DROP TABLE hits"))
    try:
        response = _post(broken, public_id)
        assert response.status_code == 503
        assert response.get_json()["error"]
        assert response.headers["Retry-After"] == "5"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    finally:
        broken.extensions["tracker.collect.writer"].close()
        engine.dispose()


def test_a_database_that_cannot_be_read_gets_503_not_500(make_database, tmp_path):
    url = make_database("unmigrated")  # no tables at all: the site lookup fails
    broken = _app_on(url, tmp_path)
    try:
        response = _post(broken, "site-1")
        assert response.status_code == 503
        assert response.get_json()["error"]
    finally:
        get_engine(broken).dispose()
