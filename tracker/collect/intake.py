"""The one door every page view and identify passes, whichever way it came (POST /collect on the
event loop or in a thread, the <noscript> pixel, POST /api/events): the rules that turn a
validated beacon into the hit to store, or accept it and store nothing."""

from __future__ import annotations

from tracker.collect.agents import parse_agent
from tracker.collect.anonymous import anonymous_visitor
from tracker.collect.beacon import Beacon
from tracker.collect.hits import Hit
from tracker.collect.known_sites import SiteInfo
from tracker.db import utcnow
from tracker.errors import InvalidEvent, InvalidIdentity
from tracker.identity import identity_hash, normalise_email, normalise_phone
from tracker.limits import USER_AGENT_LENGTH


def admit(
    beacon: Beacon,
    site: SiteInfo | None,
    user_agent: str | None,
    *,
    opted_out: bool = False,
    secret_key: str = "",
    ip: str | None = None,
) -> Hit | None:
    """The hit to store for `beacon`, or None when it is accepted and not stored: automation or a
    bot (an empty User-Agent is one; None means the sender gave none, as a server may for an
    identify), an unknown site, or a browser that asked not to be tracked (Do-Not-Track or Global
    Privacy Control, `opted_out`) on a site that respects it.

    A beacon without a visitor id gets the daily-rotating anonymous one (tracker.collect.anonymous);
    an email or phone is stored only as its keyed hash. `secret_key` keys both. A phone that is no
    phone number raises InvalidEvent."""
    if user_agent is not None:
        user_agent = user_agent[:USER_AGENT_LENGTH]
    agent = parse_agent(user_agent) if user_agent is not None else None
    if beacon.automated or (agent is not None and agent.is_bot) or site is None:
        return None
    if opted_out and site.respect_dnt:
        return None
    ts = beacon.ts or utcnow()
    visitor = beacon.visitor or anonymous_visitor(secret_key, site.id, ts.date(), user_agent or "", ip)
    return Hit(
        site.id, site.host, visitor, ts, beacon.event == "pageview", beacon.url, beacon.referrer,
        beacon.title, beacon.width,
        agent.device_type if agent else None, agent.browser if agent else None, agent.os if agent else None,
        _identities(beacon, site, secret_key) if beacon.email or beacon.phone else (),
    )  # fmt: skip


def opted_out(dnt: str | None, gpc: str | None) -> bool:
    """Did the browser ask not to be tracked (the DNT and Sec-GPC request headers)?"""
    return dnt == "1" or gpc == "1"


def _identities(beacon: Beacon, site: SiteInfo, secret_key: str) -> tuple[tuple[str, str], ...]:
    found = []
    if beacon.email:
        found.append(("email", identity_hash(secret_key, "email", normalise_email(beacon.email))))
    if beacon.phone:
        try:
            phone = normalise_phone(beacon.phone, site.phone_region)
        except InvalidIdentity as exc:
            raise InvalidEvent(f"'phone': {exc}") from None
        found.append(("phone", identity_hash(secret_key, "phone", phone)))
    return tuple(found)
