"""The `tracker` command line: its root, the database, the server and sites; every other group of
commands lives with its part and is loaded only when it runs (GROUPS)."""

from __future__ import annotations

import atexit
import gc
import importlib
import os

import click
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tracker.console import CommandError, db_session, load_config, user_errors
from tracker.models import PROVIDERS, Site
from tracker.sites import add_secret, create_site, require_site, set_retention

# A command ends without a last full garbage collection over every object SQLAlchemy and the
# command made (a third of a second on a small machine); the process's memory goes back anyway.
atexit.register(gc.freeze)

# The groups of commands kept with their part, each as "module:attribute", imported when one of its
# commands runs (or help lists them): a command starts with only what it uses, so that
# `tracker reports build` loads neither Flask, nor the mail templates, nor the webhook parsers.
GROUPS = {
    "claims": "reports.cli:claims_group",
    "costs": "reports.cli:costs_group",
    "demo": "reports.demo:demo_command",
    "digest": "reports.cli:digest_group",
    "people": "tracker.cli.people:people_group",
    "reports": "reports.cli:reports_group",
    "tokens": "tracker.cli.users:tokens_group",
    "users": "tracker.cli.users:users_group",
    "webhooks": "tracker.webhooks.cli:webhooks_group",
}


class _Root(click.Group):
    """The root group: its own commands, and GROUPS loaded by name."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *GROUPS})

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)  # loads the command's group (get_command)
        finally:
            if not gc.isenabled():
                # Paused by tracker.__main__ while the modules loaded. What they made lives as long
                # as the process: frozen first, it is not walked by the command's first collection
                # (about 35 ms, all of it young while collections were off).
                gc.freeze()
                gc.enable()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in GROUPS:
            module, attribute = GROUPS[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=_Root)
@click.version_option(package_name="sms-roi-tracker", prog_name="tracker")
def main() -> None:
    """Self-hosted attribution: which SMS campaigns made money."""


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
