"""The `tracker` command line: database, server, sites, users and tokens."""

from __future__ import annotations

import atexit
import functools
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from tracker.config import Config, ConfigError

# A command ends without a last full garbage collection over every object SQLAlchemy and the
# command made (a third of a second on a small machine); the process's memory goes back anyway.
atexit.register(gc.freeze)


def fewer_collections() -> None:
    """For a batch command that makes millions of short-lived objects: what the imports made is
    kept out of every later collection, and collections run less often (about a tenth of the
    command line's CPU otherwise)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)


class CommandError(click.ClickException):
    """A user mistake: printed as one sentence on stderr, exit status 1."""

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


def user_errors(func):
    """Turn expected failures (bad values, unreachable or unmigrated database) into one sentence."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (OperationalError, ProgrammingError) as exc:
            raise CommandError(_database_message(exc)) from None
        except ValueError as exc:  # our domain errors all derive from ValueError
            raise CommandError(str(exc)) from None

    return wrapper


def _database_message(exc: Exception) -> str:
    text = str(getattr(exc, "orig", exc)).lower()
    if "no such table" in text or "does not exist" in text and "relation" in text:
        return "The database has no tables yet; run `tracker db upgrade` first."
    return f"Cannot use the database: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}"


def load_config() -> Config:
    try:
        return Config.from_mapping()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


@contextmanager
def db_session(config: Config | None = None) -> Iterator[Session]:
    """A session for one command; committed on success, rolled back on error."""
    from tracker.db import make_engine

    config = config or load_config()
    engine = make_engine(config.database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            with session.begin():
                yield session
    finally:
        engine.dispose()


@click.group()
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
    from tracker.migrate import upgrade

    config = load_config()
    upgrade(config.database_url, revision)
    click.echo(f"Database is at {revision}.")


@db_group.command("downgrade")
@click.argument("revision")
@user_errors
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    from tracker.migrate import downgrade

    downgrade(load_config().database_url, revision)
    click.echo(f"Database is at {revision}.")


# --- server ---------------------------------------------------------------------------------


@main.command("serve")
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@user_errors
def serve(bind: str, workers: int, threads: int) -> None:
    """Run the collector, webhooks and reports under gunicorn."""
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
    from tracker.sites import create_site

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
    from tracker.models import Site

    with db_session() as session:
        for site in session.scalars(select(Site).order_by(Site.id)):
            click.echo(f"{site.public_id}\t{site.domain}\t{site.timezone}\t{site.currency}")


@sites_group.command("secret")
@click.argument("site")
@click.argument("provider", type=click.Choice(["shopify", "woocommerce", "stripe", "orders"]))
@click.argument("secret")
@user_errors
def sites_secret(site: str, provider: str, secret: str) -> None:
    """Store a webhook SECRET for PROVIDER; the previous one keeps verifying (rotation)."""
    from tracker.sites import add_secret, require_site

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
    from tracker.credentials import hash_password
    from tracker.identity import normalise_email
    from tracker.models import User

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
    from tracker.credentials import hash_token, new_token
    from tracker.models import ApiToken

    name = name.strip()
    if not name or len(name) > 100:
        raise CommandError("A token name needs 1 to 100 characters.")
    token = new_token()
    with db_session() as session:
        session.add(ApiToken(name=name, token_hash=hash_token(token), prefix=token[:8]))
    click.echo(f"Created token {name!r}. It is shown only once:")
    click.echo(token)


def _register_subsystems() -> None:
    from reports.cli import costs_group, reports_group
    from tracker.webhooks.cli import webhooks_group

    main.add_command(costs_group)
    main.add_command(reports_group)
    main.add_command(webhooks_group)
    try:
        from reports.demo import demo_command
    except ImportError:  # the demo generator is optional in slim builds
        return
    main.add_command(demo_command)


_register_subsystems()
