"""Alembic environment: the URL comes from the tracker's configuration (TRACKER_DATABASE_URL),
never from alembic.ini; `tracker db upgrade` passes its own URL or connection instead."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import reports.models  # noqa: F401  (registers the report tables on the metadata)
import tracker.models  # noqa: F401
from tracker import citus
from tracker.config import Config
from tracker.db import Base, make_engine
from tracker.errors import ConfigError

config = context.config
target_metadata = Base.metadata
# Run as `alembic ...`: its log lines say what each step does. Run by `tracker db upgrade`, quiet.
if config.config_file_name and not config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    try:
        return Config.from_mapping().database_url
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None


def _include(obj, name, type_, reflected, compare_to) -> bool:
    """What autogenerate and `alembic check` compare: not the indexes a database has on Citus only
    (tracker.citus.SITE_INDEXES), which `tracker db upgrade` adds there itself."""
    return not (type_ == "index" and reflected and compare_to is None and name in citus.SITE_INDEXES)


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        include_object=_include,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()
    _place_on_citus(connection)


# The revision from which the tables can be distributed (primary keys include site_id).
DISTRIBUTABLE = "0012"


def _place_on_citus(connection) -> None:
    """On Citus, from revision 0012 on, place every table not placed yet (tracker/citus.py): the
    tables of that revision, those of later ones, and all of a database that was upgraded on plain
    PostgreSQL before it moved onto Citus; then analyse the tables placed."""
    if not citus.installed(connection):
        return
    current = MigrationContext.configure(connection).get_current_revision()
    script = ScriptDirectory.from_config(config)
    placed = []
    if current and any(r.revision == DISTRIBUTABLE for r in script.iterate_revisions(current, "base")):
        placed = citus.distribute(connection)
    if connection.in_transaction():
        connection.commit()
    citus.analyse(connection, placed)
    if connection.in_transaction():
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
