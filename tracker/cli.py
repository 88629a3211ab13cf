"""The `tracker` command line: database, server, sites, users and tokens."""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys

import click
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reports.cli import claims_group, costs_group, digest_group, reports_group
from reports.demo import demo_command
from tracker import access, privacy
from tracker.audit import audit
from tracker.console import CommandError, db_session, load_config, user_errors
from tracker.db import begin_write
from tracker.identity import normalise_email
from tracker.models import PROVIDERS, ApiToken, Role, Site, User, WebhookDelivery
from tracker.sites import add_secret, create_site, require_site, set_retention
from tracker.webhooks import shopify
from tracker.webhooks.cli import webhooks_group
from tracker.webhooks.payload import MalformedPayload, items, mapping, parse_json, text_or_none
from tracker.webhooks.sealing import UnreadableBody, unseal

# A command ends without a last full garbage collection over every object SQLAlchemy and the
# command made (a third of a second on a small machine); the process's memory goes back anyway.
atexit.register(gc.freeze)


@click.group()
@click.version_option(package_name="sms-roi-tracker", prog_name="tracker")
def main() -> None:
    """Self-hosted attribution: which SMS campaigns made money."""


main.add_command(costs_group)
main.add_command(reports_group)
main.add_command(digest_group)
main.add_command(claims_group)
main.add_command(webhooks_group)
main.add_command(demo_command)


# --- database -------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@user_errors
def db_upgrade(revision: str) -> None:
    """Apply migrations up to head."""
    # Alembic loads here only: about 80 ms of start-up that no other command needs.
    from tracker import migrate

    migrate.upgrade(load_config().database_url, revision)
    click.echo(f"Database is at {revision}.")


@db_group.command("downgrade")
@click.argument("revision")
@user_errors
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    from tracker import migrate  # as in db upgrade

    migrate.downgrade(load_config().database_url, revision)
    click.echo(f"Database is at {revision}.")


# --- server ---------------------------------------------------------------------------------


@main.command("serve")
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--no-nightly", is_flag=True,
              help="Do not run the nightly build and digest (when cron or systemd schedules them).")
@user_errors
def serve(bind: str, workers: int, threads: int, no_nightly: bool) -> None:
    """Run the collector, webhooks and reports under gunicorn."""
    # Here, not at the top: the server loads Flask, the app and gunicorn, which no other command
    # needs (they would double `tracker --help`'s start-up time).
    from tracker.server import run

    if no_nightly:
        os.environ["TRACKER_NIGHTLY"] = "0"  # read by each worker's configuration
    load_config()  # fail early, in one sentence, on a bad configuration
    run(bind=bind, workers=workers, threads=threads)


# --- sites ----------------------------------------------------------------------------------


@main.group("sites")
def sites_group() -> None:
    """Manage sites (one per store)."""


@sites_group.command("add")
@click.argument("domain")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the store.")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 store currency.")
@user_errors
def sites_add(domain: str, timezone: str, currency: str) -> None:
    """Create a site; prints its public site id on the last line."""
    try:
        with db_session() as session:
            site = create_site(session, domain, timezone=timezone, currency=currency)
    except IntegrityError:
        raise CommandError(f"A site for {domain} already exists.") from None
    click.echo(f"Created {site.domain} ({site.timezone}, {site.currency}).")
    click.echo(
        f'Snippet: <script defer src="https://COLLECTOR/t.js" data-site="{site.public_id}"></script>'
    )
    click.echo(site.public_id)


@sites_group.command("list")
@user_errors
def sites_list() -> None:
    """List sites: public id, domain, time zone, currency."""
    with db_session() as session:
        for site in session.scalars(select(Site).order_by(Site.id)):
            click.echo(f"{site.public_id}\t{site.domain}\t{site.timezone}\t{site.currency}")


@sites_group.command("retention")
@click.argument("site")
@click.argument("days", type=int)
@user_errors
def sites_retention(site: str, days: int) -> None:
    """Keep raw visits and webhook bodies for DAYS days (0: for ever); the nightly build deletes the rest."""
    with db_session() as session:
        found = require_site(session, site)
        set_retention(found, days)
        domain = found.domain
    if days:
        click.echo(f"{domain} keeps visits for {days} days: the nightly build deletes older ones once "
                   "they are rolled up; reports over older days come from the rollups.")
    else:
        click.echo(f"{domain} keeps visits for ever.")


@sites_group.command("secret")
@click.argument("site")
@click.argument("provider", type=click.Choice(PROVIDERS))
@click.argument("secret")
@user_errors
def sites_secret(site: str, provider: str, secret: str) -> None:
    """Store a webhook SECRET for PROVIDER; the previous one keeps verifying (rotation)."""
    with db_session() as session:
        found = require_site(session, site)
        add_secret(session, found, provider, secret)
        domain = found.domain
    click.echo(f"Stored the {provider} secret for {domain}.")


# --- people ---------------------------------------------------------------------------------


@main.group("people")
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
            rows.append((str(delivery.id), _when(delivery.received_at, ""), domain,
                         str(mapping(data.get("data_request")).get("id") or "?"),
                         str(mapping(data.get("customer")).get("id") or "?"),
                         str(len(items(data.get("orders_requested")))),
                         f"tracker people export {domain} --request {delivery.id}"))
    if not rows:
        click.echo("No data requests received.")
        return
    _table(("request", "received", "site", "shopify request", "customer", "orders", "export with"), rows)


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


# --- users and tokens -----------------------------------------------------------------------


@main.group("users")
def users_group() -> None:
    """Manage the people who can open the reports, and the sites each may see."""


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


def _sites(session, refs: tuple[str, ...]) -> list[Site]:
    return list({site.id: site for site in (require_site(session, ref) for ref in refs)}.values())


@users_group.command("add")
@click.argument("email")
@click.option("--site", "site_refs", multiple=True, help="A site the user may see (repeat for more).")
@click.option("--admin", is_flag=True, help="Every site, and managing users.")
@user_errors
def users_add(email: str, site_refs: tuple[str, ...], admin: bool) -> None:
    """Create a report user (the password is read from stdin): an admin, or a viewer of --site."""
    address = normalise_email(email)
    password = _read_password()
    with db_session() as session:
        user = access.add_user(session, address, password, _sites(session, site_refs), admin)
        sites = access.sites_of_users(session).get(user.id, [])
        role = user.role
    audit("users.add", user=address, role=role, sites=",".join(sites) or "all")
    if role == Role.ADMIN:
        click.echo(f"Created user {address}, an admin: sees every site.")
    else:
        click.echo(f"Created user {address}, a viewer of {', '.join(sites)}.")


@users_group.command("grant")
@click.argument("email")
@click.argument("site_ref", metavar="SITE")
@user_errors
def users_grant(email: str, site_ref: str) -> None:
    """Let a viewer see SITE."""
    address = normalise_email(email)
    with db_session() as session:
        site = require_site(session, site_ref)
        changed = access.grant(session, access.find_user(session, address), site)
        domain = site.domain
    if changed:
        audit("users.grant", user=address, site=domain)
    click.echo(f"{address} {'may now see' if changed else 'could already see'} {domain}.")


@users_group.command("revoke")
@click.argument("email")
@click.argument("site_ref", metavar="SITE")
@user_errors
def users_revoke(email: str, site_ref: str) -> None:
    """Take SITE from a viewer; their logged-in sessions end at once."""
    address = normalise_email(email)
    with db_session() as session:
        site = require_site(session, site_ref)
        changed = access.revoke(session, access.find_user(session, address), site)
        domain = site.domain
    if changed:
        audit("users.revoke", user=address, site=domain)
        click.echo(f"{address} may no longer see {domain}; their sessions are ended.")
    else:
        click.echo(f"{address} could not see {domain}; nothing changed.")


@users_group.command("list")
@user_errors
def users_list() -> None:
    """Every user: email, role, sites, last login."""
    with db_session() as session:
        users = list(session.scalars(select(User).order_by(User.email)))
        sites = access.sites_of_users(session)
        rows = [(u.email, u.role, _scope(u.role == Role.ADMIN, sites.get(u.id)),
                 _when(u.last_login_at, "never")) for u in users]
    if not rows:
        click.echo("No users yet; `tracker users add EMAIL` creates the first (an admin).")
        return
    _table(("email", "role", "sites", "last login"), rows)


@users_group.command("remove")
@click.argument("email")
@user_errors
def users_remove(email: str) -> None:
    """Remove a user; their logged-in sessions end at once."""
    address = normalise_email(email)
    with db_session() as session:
        access.remove_user(session, access.find_user(session, address))
    audit("users.remove", user=address)
    click.echo(f"Removed user {address}.")


@users_group.command("password")
@click.argument("email")
@user_errors
def users_password(email: str) -> None:
    """Set a user's password (read from stdin); their logged-in sessions end."""
    address = normalise_email(email)
    password = _read_password()
    with db_session() as session:
        access.set_password(session, access.find_user(session, address), password)
    audit("users.password", user=address)
    click.echo(f"Set a new password for {address}; their other sessions are ended.")


@main.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("add")
@click.argument("name")
@click.option("--site", "site_refs", multiple=True, help="A site the token may see (repeat); none: all.")
@user_errors
def tokens_add(name: str, site_refs: tuple[str, ...]) -> None:
    """Create an API token; prints it once, on the last line."""
    with db_session() as session:
        sites = _sites(session, site_refs)
        token, clear = access.add_token(session, name, sites)
        name, domains = token.name, [site.domain for site in sites]
    scope = ", ".join(sorted(domains)) if domains else "every site"
    audit("tokens.add", token=name, sites=",".join(sorted(domains)) or "all")
    click.echo(f"Created token {name!r} for {scope}. It is shown only once:")
    click.echo(clear)


@tokens_group.command("list")
@user_errors
def tokens_list() -> None:
    """Every token: name, first characters, sites, created, last used (never the token itself)."""
    with db_session() as session:
        tokens = list(session.scalars(select(ApiToken).order_by(ApiToken.name)))
        sites = access.sites_of_tokens(session)
        rows = [(t.name, t.prefix + "…", _scope(t.all_sites, sites.get(t.id)), _when(t.created_at, ""),
                 _when(t.last_used_at, "never")) for t in tokens]
    if not rows:
        click.echo("No tokens yet; `tracker tokens add NAME` creates one.")
        return
    _table(("name", "starts with", "sites", "created", "last used"), rows)


@tokens_group.command("revoke")
@click.argument("ref", metavar="NAME|PREFIX")
@user_errors
def tokens_revoke(ref: str) -> None:
    """Revoke a token by its name or first characters: its next request is refused (401)."""
    with db_session() as session:
        token = access.revoke_token(session, ref)
        name = token.name
    audit("tokens.revoke", token=name)
    click.echo(f"Revoked token {name!r}.")


def _scope(every: bool, domains: list[str] | None) -> str:
    return "(every site)" if every else ", ".join(domains or []) or "(none)"


def _when(moment, never: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else never


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (str(value).ljust(width) for value, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
