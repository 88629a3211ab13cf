"""Citus (distributed PostgreSQL): which tables are spread over the workers and how.

A database runs on Citus when the `citus` extension is installed in it. Every per-site table (one
with a `site_id` column) is then a distributed table, sharded by `site_id` and co-located with the
others, so a site's visitors, sessions, page views, orders and rollups share one shard and every
report of one site runs on one worker. The shared tables (sites, users, tokens, their grants and
the login throttle) are reference tables: a copy on every node, joinable with any shard.

Citus asks that a distributed table's primary key and unique constraints include `site_id` (on
PostgreSQL the per-site tables' primary keys are `(id, site_id)`, revision 0012) and that foreign
keys between distributed tables include it too: per-site tables refer only to `sites`, and the code
deletes a person's or a visit's rows itself.

`tracker db upgrade` (and `alembic upgrade`) places every table not placed yet once the database
has revision 0012, which made them distributable (`distribute`, from migrations/env.py): after that
revision, after any later one that creates a table, and when a database upgraded on plain
PostgreSQL moves onto Citus; it also adds the Citus-only SITE_INDEXES. Revision 0012's downgrade
brings the tables back to the coordinator (`undistribute`) without them.

`create_database` makes a new database of the cluster, as docs/citus.md does by hand: on every node,
with the extension, its workers added; `drop_database` removes it from every node.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url

DISTRIBUTION_COLUMN = "site_id"
# Shared by every site: reference tables on Citus (a full copy on each node).
SHARED_TABLES = frozenset({"sites", "users", "user_sites", "api_tokens", "api_token_sites", "login_attempts"})
# Alembic's own bookkeeping stays a plain table on the coordinator.
LOCAL_TABLES = frozenset({"alembic_version"})
# Indexes a database has on Citus only: name -> (table, columns). There every statement of one site
# names the site on each of its tables, or Citus would send it to every shard. A shard's planner
# without statistics yet (rows just loaded, before autovacuum's first ANALYZE) may then take the
# site condition to the site's own index and, for each order, walk all of the site's visits for
# its visitors' few: leading with the site, these indexes serve the site and the visitor (or
# person) at once, so the planner keeps to them even then (reports/credit.py). Elsewhere the
# lookups need no site condition and the plain indexes serve them; the migrations leave these out
# (migrations/env.py).
SITE_INDEXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ix_sessions_site_id_visitor_id_started_at": ("sessions", ("site_id", "visitor_id", "started_at")),
    "ix_visitors_site_id_person_id": ("visitors", ("site_id", "person_id")),
}


def installed(connection: Connection) -> bool:
    """Does this database run on Citus (the extension is installed in it)?"""
    if connection.dialect.name != "postgresql":
        return False
    return connection.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'citus'")) > 0


_ENGINES: WeakKeyDictionary[Engine, bool] = WeakKeyDictionary()


def on(connection: Connection) -> bool:
    """`installed`, asked once per engine."""
    engine = connection.engine
    if engine not in _ENGINES:
        _ENGINES[engine] = installed(connection)
    return _ENGINES[engine]


def placement(connection: Connection) -> dict[str, str]:
    """The Citus tables of the current schema: name → 'distributed' or 'reference'."""
    rows = connection.execute(text(
        "SELECT c.relname, p.partmethod FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace"))
    return {name: "reference" if method == "n" else "distributed" for name, method in rows}


def distribute(connection: Connection) -> list[str]:
    """Make every table not yet placed a reference table (shared) or a distributed one (per site,
    co-located), and add the SITE_INDEXES; does nothing off Citus. Returns the tables placed now."""
    if not installed(connection):
        return []
    inspector = inspect(connection)
    placed = placement(connection)
    tables = [t for t in inspector.get_table_names() if t not in placed and t not in LOCAL_TABLES]
    per_site = {t for t in tables if t not in SHARED_TABLES
                and any(c["name"] == DISTRIBUTION_COLUMN for c in inspector.get_columns(t))}
    # Reference tables first (distributed ones refer to them), each after the tables it refers to.
    refers = {t: {fk["referred_table"] for fk in inspector.get_foreign_keys(t)} - {t} for t in tables}
    pending = sorted(t for t in tables if t not in per_site)
    done: list[str] = []
    while pending:
        ready = [t for t in pending if refers[t] <= set(placed)] or pending[:1]
        for table in ready:
            connection.execute(text("SELECT create_reference_table(:t)"), {"t": table})
            placed[table] = "reference"
            pending.remove(table)
            done.append(table)
    group = next((t for t, kind in sorted(placed.items()) if kind == "distributed"), None)
    for table in sorted(per_site):
        connection.execute(
            text("SELECT create_distributed_table(:t, :column, colocate_with => :group)"),
            {"t": table, "column": DISTRIBUTION_COLUMN, "group": group or "default"},
        )
        group = group or table
        done.append(table)
    for name, (table, columns) in SITE_INDEXES.items():
        connection.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})"))
    return done


def analyse(connection: Connection, tables: list[str]) -> None:
    """Statistics for tables just placed (in a transaction of their own, after the placing one):
    their rows were copied into new shards, which autovacuum would analyse only a minute later."""
    if tables:
        connection.execute(text(f"ANALYZE {', '.join(tables)}"))


def sequential(connection: Connection) -> None:
    """For the rest of the transaction, one connection per worker rather than one per shard: what
    Citus asks of a transaction that changes several distributed tables (say, dropping them) and
    then touches them again. Does nothing off Citus."""
    if installed(connection):
        connection.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))


def undistribute(connection: Connection) -> None:
    """Bring every Citus table of the schema back to the coordinator as a plain table."""
    if not installed(connection):
        return
    placed = placement(connection)
    sequential(connection)
    for name in SITE_INDEXES:
        connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for table in sorted(placed, key=lambda t: placed[t] != "distributed"):
        if table in placement(connection):  # cascading through foreign keys may have done it
            connection.execute(text("SELECT undistribute_table(:t, cascade_via_foreign_keys => true)"),
                               {"t": table})


def workers(connection: Connection) -> list[tuple[str, int]]:
    """The cluster's primary workers (host, port), in the order they were added; empty off Citus."""
    if not installed(connection):
        return []
    return [(host, port) for host, port in connection.execute(text(
        "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0 "
        "ORDER BY nodeid"))]


def create_database(admin_url: str | URL, name: str) -> str:
    """Create the empty database `name` on the server of `admin_url` (a PostgreSQL URL whose database
    is only read) and return its URL. When that database runs on Citus, so does the new one: it is
    created on the coordinator and on every worker, with the extension in each, and the workers are
    added to it. If a step fails, the database is dropped again from the nodes it was created on."""
    admin = make_url(admin_url)
    coordinator, nodes = _cluster(admin)
    url = admin.set(database=name)
    created: list[URL] = []
    try:
        for node in [admin, *_admin_urls(admin, nodes)]:
            _execute(node, f'CREATE DATABASE "{name}"')
            created.append(node)
            if coordinator:
                _execute(node.set(database=name), "CREATE EXTENSION citus")
        if coordinator:
            _execute(url, "SELECT citus_set_coordinator_host('{}', {})".format(*coordinator),
                     *(f"SELECT citus_add_node('{host}', {port})" for host, port in nodes))
    except Exception:
        for node in created:
            _execute(node, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        raise
    return url.render_as_string(hide_password=False)


def drop_database(admin_url: str | URL, name: str) -> None:
    """Drop the database `name` from the server of `admin_url` and, on Citus, from every worker."""
    admin = make_url(admin_url)
    for node in [admin, *_admin_urls(admin, _cluster(admin)[1])]:
        _execute(node, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cluster(admin: URL) -> tuple[tuple[str, int] | None, list[tuple[str, int]]]:
    """The coordinator's address as its workers know it (None off Citus), and the workers'."""
    engine = create_engine(admin)
    try:
        with engine.connect() as conn:
            if not installed(conn):
                return None, []
            found = conn.execute(text(
                "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid = 0 AND noderole = 'primary'"
            )).first()
            nodes = workers(conn)
    finally:
        engine.dispose()
    return (tuple(found) if found else (admin.host or "localhost", admin.port or 5432)), nodes


def _admin_urls(admin: URL, nodes: list[tuple[str, int]]) -> list[URL]:
    """`admin`'s user and password on each node, in its database `postgres`."""
    return [admin.set(host=host, port=port, database="postgres") for host, port in nodes]


def _execute(url: URL, *statements: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()
