"""`tracker people`: a person's data on a site, exported or erased, and the stores' data requests."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from tracker import privacy
from tracker.audit import audit
from tracker.console import CommandError, db_session, load_config, print_table, user_errors, when
from tracker.db import begin_write
from tracker.models import Site, WebhookDelivery
from tracker.sites import require_site
from tracker.webhooks import shopify
from tracker.webhooks.payload import MalformedPayload, items, mapping, parse_json, text_or_none
from tracker.webhooks.sealing import UnreadableBody, unseal


@click.group("people")
def people_group() -> None:
    """A person's data on a site: export it, or erase it."""


def _person_options(command):
    for option in reversed((
        click.option("--email", help="The person's email address."),
        click.option("--phone", help="The person's phone number (national numbers in the site's region)."),
        click.option("--visitor", help="The visitor id the snippet keeps in their browser."),
    )):
        command = option(command)
    return command


@people_group.command("forget")
@click.argument("site_ref", metavar="SITE")
@_person_options
@user_errors
def people_forget(site_ref: str, email: str | None, phone: str | None, visitor: str | None) -> None:
    """Erase a person on SITE: identities, visitors, visits, page views; their orders stay, unlinked."""
    config = load_config()
    with db_session(config) as session:
        begin_write(session)
        site = require_site(session, site_ref)
        subject = privacy.find_subject(session, site, config.secret_key, email, phone, visitor)
        erased = privacy.forget(session, subject)
        domain = site.domain
    audit("people.forget", site=domain, visitors=erased.visitors, orders=erased.orders)
    click.echo(erased.sentence(domain))


@people_group.command("export")
@click.argument("site_ref", metavar="SITE")
@_person_options
@click.option("--request", "request_id", type=int, help="A data request (`tracker people requests`).")
@user_errors
def people_export(site_ref: str, email: str | None, phone: str | None, visitor: str | None,
                  request_id: int | None) -> None:
    """Print, as JSON, everything held about a person on SITE."""
    config = load_config()
    with db_session(config) as session:
        site = require_site(session, site_ref)
        if request_id is not None:
            if email or phone or visitor:
                raise CommandError("Give either --request or the person, not both.")
            data = _data_request(session, site, request_id, config.secret_key)
            who = mapping(data.get("customer"))
            order_ids = [str(i) for i in items(data.get("orders_requested"))]
            subject = privacy.customer(session, site, config.secret_key, text_or_none(who.get("email")),
                                       text_or_none(who.get("phone")), "shopify", order_ids)
        else:
            subject = privacy.find_subject(session, site, config.secret_key, email, phone, visitor)
        held = {"site": site.domain, **privacy.export(session, subject)}
    click.echo(json.dumps(held, indent=2, ensure_ascii=False))


@people_group.command("requests")
@click.argument("site_ref", metavar="SITE", required=False)
@user_errors
def people_requests(site_ref: str | None) -> None:
    """The data requests stores sent (Shopify's customers/data_request), newest first."""
    config = load_config()
    with db_session(config) as session:
        query = select(WebhookDelivery, Site.domain).join(Site, Site.id == WebhookDelivery.site_id).where(
            WebhookDelivery.provider == "shopify", WebhookDelivery.topic == shopify.DATA_REQUEST)
        if site_ref:
            query = query.where(WebhookDelivery.site_id == require_site(session, site_ref).id)
        rows = []
        for delivery, domain in session.execute(query.order_by(WebhookDelivery.received_at.desc())):
            data = _payload(delivery, config.secret_key)
            rows.append((str(delivery.id), when(delivery.received_at, ""), domain,
                         str(mapping(data.get("data_request")).get("id") or "?"),
                         str(mapping(data.get("customer")).get("id") or "?"),
                         str(len(items(data.get("orders_requested")))),
                         f"tracker people export {domain} --request {delivery.id}"))
    if not rows:
        click.echo("No data requests received.")
        return
    print_table(("request", "received", "site", "shopify request", "customer", "orders", "export with"), rows)


def _payload(delivery: WebhookDelivery, secret_key: str) -> dict:
    try:
        return parse_json(unseal(secret_key, delivery.body))
    except (MalformedPayload, UnreadableBody):
        return {}


def _data_request(session, site: Site, request_id: int, secret_key: str) -> dict:
    delivery = session.get(WebhookDelivery, (request_id, site.id))
    if delivery is None or delivery.site_id != site.id or delivery.topic != shopify.DATA_REQUEST:
        raise CommandError(f"There is no data request {request_id} for {site.domain}; "
                           "`tracker people requests` lists them.")
    return _payload(delivery, secret_key)
