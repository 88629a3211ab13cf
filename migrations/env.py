"""Alembic environment: the URL comes from the tracker's configuration (TRACKER_DATABASE_URL),
never from alembic.ini; `tracker db upgrade` passes its own URL or connection instead."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

import reports.models  # noqa: F401  (registers the report tables on the metadata)
import tracker.models  # noqa: F401
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


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
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
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
