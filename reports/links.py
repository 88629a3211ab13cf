"""Each session's links to its visitor's previous session: any, in the same channel, in the same
source/medium/campaign (the stored report levels that count distinct visitors).

A visitor is counted once over a range of days, on the first day it is seen there; a session is
a visitor's first of a day in a row exactly when its previous visit in that row started on an
earlier local day (or never). With the links stored, the nightly build counts visitors with one
scan of the sessions instead of sorting every visitor's history.

The collector and `tracker demo` write the links with each session. Any session stored otherwise
(or re-split by a late page view) is unlinked (`visits_linked` false); `link_visits` recomputes
every session of those visitors in one statement before the build counts.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from tracker.models import VISIT_LINKS, TrackedSession


def expected_links(site_id: int, visitors=None):
    """A query of (session id, *the links it should have) for a site's sessions (or those of the
    visitors selected by `visitors`, a subquery of visitor ids)."""
    s = TrackedSession
    where = [s.site_id == site_id]
    if visitors is not None:
        where.append(s.visitor_id.in_(visitors))
    return select(
        s.id,
        *(
            func.lag(s.started_at)
            .over(partition_by=[s.visitor_id, *(getattr(s, c) for c in shared)],
                  order_by=[s.started_at, s.id])
            .label(name)
            for name, shared in VISIT_LINKS.items()
        ),
    ).where(*where)


def unlinked_count(session: Session, site_id: int) -> int:
    """How many of the site's sessions wait for their links (all of them, once, after an upgrade)."""
    s = TrackedSession
    return session.scalar(select(func.count()).where(s.site_id == site_id, ~s.visits_linked)) or 0


def link_visits(session: Session, site_id: int, everything: bool = False) -> int:
    """Link every session of the site's visitors that have an unlinked session (of all its visitors
    with `everything`); returns how many sessions changed. No commit."""
    s = TrackedSession
    visitors = None
    if not everything:
        unlinked = (s.site_id == site_id, ~s.visits_linked)
        if session.execute(select(s.id).where(*unlinked).limit(1)).first() is None:
            return 0
        visitors = select(s.visitor_id).where(*unlinked).distinct()
    wanted = expected_links(site_id, visitors).subquery("wanted")
    changed = or_(~s.visits_linked,
                  *(getattr(s, name).is_distinct_from(wanted.c[name]) for name in VISIT_LINKS))
    result = session.execute(
        update(s)
        .where(s.id == wanted.c.id, changed)
        .values(**{name: wanted.c[name] for name in VISIT_LINKS}, visits_linked=True)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
