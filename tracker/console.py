"""What every `tracker` command shares: its configuration, a database session, one-sentence errors.

A leaf of the command line: the groups of each part (`reports.cli`, `reports.demo`,
`tracker.webhooks.cli`, `tracker.cli.people`, `tracker.cli.users`) import it, and the root
(`tracker.cli`) loads each group when one of its commands runs.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from tracker.config import Config
from tracker.db import make_engine
from tracker.errors import TrackerError
from tracker.models import Site
from tracker.sites import require_site


class CommandError(click.ClickException):
    """A user mistake: printed as one sentence on stderr, exit status 1."""

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


def user_errors(func):
    """Turn the expected failures (TrackerError, an unreachable or unmigrated database) into one
    sentence; anything else is a bug and keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (OperationalError, ProgrammingError) as exc:
            raise CommandError(_database_message(exc)) from None
        except TrackerError as exc:
            raise CommandError(str(exc)) from None

    return wrapper


def _database_message(exc: Exception) -> str:
    text = str(getattr(exc, "orig", exc)).lower()
    if "no such table" in text or "does not exist" in text and "relation" in text:
        return "The database has no tables yet; run `tracker db upgrade` first."
    return f"Cannot use the database: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}"


def load_config() -> Config:
    """The configuration from the environment; a bad value is a TrackerError (ConfigError)."""
    return Config.from_mapping()


@contextmanager
def db_session(config: Config | None = None) -> Iterator[Session]:
    """A session for one command; committed on success, rolled back on error."""
    config = config or load_config()
    engine = make_engine(config.database_url, config.waits)
    try:
        with Session(engine, expire_on_commit=False) as session:
            with session.begin():
                yield session
    finally:
        engine.dispose()


def pick_site(session: Session, ref: str | None) -> Site:
    """The site named by --site, or the only one; otherwise a sentence saying what to pass."""
    if ref:
        return require_site(session, ref)
    sites = session.scalars(select(Site).order_by(Site.id).limit(2)).all()
    if len(sites) != 1:
        raise CommandError("Say which site with --site (a site id or domain); see `tracker sites list`."
                           if sites else "There is no site yet; `tracker sites add DOMAIN` creates one.")
    return sites[0]


def fewer_collections() -> None:
    """For a batch command that makes millions of short-lived objects: what exists by now is kept
    out of every later collection (the root froze the modules' objects already when run as
    `tracker`; this covers the command's own set-up and a caller such as a test's runner), and
    collections run less often (about a tenth of the command line's CPU otherwise)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)


def when(moment, never: str) -> str:
    """A stored moment as a command prints it (UTC, to the minute), or `never` when there is none."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else never


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Rows printed under their header in aligned columns."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (str(value).ljust(width) for value, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
