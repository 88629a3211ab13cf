"""The `tracker` command line: database, server, sites, users and tokens."""

from __future__ import annotations

import atexit
import gc
import sys

import click
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reports.cli import costs_group, reports_group
from reports.demo import demo_command
from tracker.console import CommandError, db_session, load_config, user_errors
from tracker.credentials import hash_password, hash_token, new_token
from tracker.identity import normalise_email
from tracker.models import PROVIDERS, ApiToken, Site, User
from tracker.sites import add_secret, create_site, require_site
from tracker.webhooks.cli import webhooks_group

# A command ends without a last full garbage collection over every object SQLAlchemy and the
# command made (a third of a second on a small machine); the process's memory goes back anyway.
atexit.register(gc.freeze)


@click.group()
@click.version_option(package_name="sms-roi-tracker", prog_name="tracker")
def main() -> None:
    """Self-hosted attribution: which SMS campaigns made money."""


main.add_command(costs_group)
main.add_command(reports_group)
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
@user_errors
def serve(bind: str, workers: int, threads: int) -> None:
    """Run the collector, webhooks and reports under gunicorn."""
    # Here, not at the top: the server loads Flask, the app and gunicorn, which no other command
    # needs (they would double `tracker --help`'s start-up time).
    from tracker.server import run

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


# --- users and tokens -----------------------------------------------------------------------


@main.group("users")
def users_group() -> None:
    """Manage the people who can open the reports."""


@users_group.command("add")
@click.argument("email")
@user_errors
def users_add(email: str) -> None:
    """Create a report user; the password is read from stdin."""
    address = normalise_email(email)
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    password_hash = hash_password(password)
    with db_session() as session:
        if session.scalar(select(User.id).where(User.email == address)) is not None:
            raise CommandError(f"A user {address} already exists.")
        session.add(User(email=address, password_hash=password_hash))
    click.echo(f"Created user {address}.")


@main.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("add")
@click.argument("name")
@user_errors
def tokens_add(name: str) -> None:
    """Create an API token; prints it once, on the last line."""
    name = name.strip()
    if not name or len(name) > 100:
        raise CommandError("A token name needs 1 to 100 characters.")
    token = new_token()
    with db_session() as session:
        session.add(ApiToken(name=name, token_hash=hash_token(token), prefix=token[:8]))
    click.echo(f"Created token {name!r}. It is shown only once:")
    click.echo(token)
