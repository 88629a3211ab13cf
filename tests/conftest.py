"""Fixtures: every database test runs against TRACKER_TEST_DATABASE_URL (SQLite by default).

`.ci/run` runs the suite three times: on a SQLite file, on PostgreSQL, and on a Citus coordinator
(`.ci/citus-cluster`). On PostgreSQL each test run creates throwaway databases and drops them at the
end, so runs never collide; on Citus each is created on the coordinator and on every worker, with
the extension, and the workers are added to it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tracker.app import create_app
from tracker.citus import create_database, drop_database, workers
from tracker.db import Base
from tracker.migrate import upgrade

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"


@pytest.fixture(scope="session")
def database_backend() -> str:
    url = os.environ.get("TRACKER_TEST_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgres") else "sqlite"


@pytest.fixture(scope="session")
def citus_workers() -> list[tuple[str, int]]:
    """The workers of the Citus coordinator under test (host, port); empty off Citus."""
    return _citus_workers(os.environ.get("TRACKER_TEST_DATABASE_URL", ""))


@pytest.fixture(scope="session")
def citus(citus_workers) -> bool:
    """Is the suite running on a Citus coordinator?"""
    return bool(citus_workers)


@pytest.fixture(scope="session")
def make_database(tmp_path_factory, citus_workers) -> Iterator:
    """A factory of empty databases on the backend under test; all dropped at the end."""
    base = os.environ.get("TRACKER_TEST_DATABASE_URL", "")
    created: list[str] = []

    def make(label: str = "db") -> str:
        if not base.startswith("postgres"):
            path = tmp_path_factory.mktemp("sqlite") / f"{label}.db"
            return f"sqlite:///{path}"
        name = f"tracker_test_{label}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        url = create_database(_driver(base), name)
        if citus_workers:  # Few shards: the suite empties every table after each test.
            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" SET citus.shard_count = 4'))
            engine.dispose()
        return url

    yield make

    for name in created:
        drop_database(_driver(base), name)


def _citus_workers(base: str) -> list[tuple[str, int]]:
    if not base.startswith("postgres"):
        return []
    engine = create_engine(_driver(base))
    with engine.connect() as conn:
        nodes = workers(conn)
    engine.dispose()
    return nodes


def _driver(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(make_database) -> str:
    """A migrated database shared by the run; tables are emptied after every test."""
    url = make_database("main")
    upgrade(url)
    return url


@pytest.fixture
def config_env(database_url, tmp_path) -> dict[str, str]:
    return {
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_SECRET_KEY": TEST_SECRET_KEY,
        "TRACKER_INSTANCE_PATH": str(tmp_path / "instance"),
        # Served apps run no nightly job unless a test asks for one (tests/reports/test_nightly.py).
        "TRACKER_NIGHTLY": "0",
    }


@pytest.fixture
def app(config_env):
    application = create_app(config_env)
    application.config["TESTING"] = True
    yield application
    _empty_tables(application)


def _empty_tables(application) -> None:
    from tracker.db import get_engine

    engine = get_engine(application)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app) -> Iterator[Session]:
    """A database session on the app's engine; the test commits what it needs visible."""
    from tracker.db import session_factory

    with session_factory(app)() as db:
        yield db


@pytest.fixture
def runner(config_env, app) -> CliRunner:
    """Runs `tracker` commands against the test database (the `app` fixture empties it after)."""
    return CliRunner(env=config_env)


@pytest.fixture
def site(session):
    from tracker.sites import create_site

    created = create_site(session, "shop.example", timezone="America/New_York", currency="USD")
    session.commit()
    return created


@pytest.fixture
def output_dir() -> Path:
    """Where tests leave artefacts for reviewers (screenshots, CSV files)."""
    path = Path(os.environ.get("TRACKER_TEST_OUTPUT", "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def served_app(config_env, app) -> Iterator[str]:
    """`tracker serve`'s gunicorn (one worker, its own event loop and threads) on the test
    database, in a child process; yields its base URL. Stopped before the tables are emptied."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    code = f"from tracker.server import run; run('127.0.0.1:{port}', 1, 4)"
    env = dict(os.environ, **config_env, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                errors = proc.communicate()[1].decode()
                raise AssertionError(f"the server did not start:\n{errors}") from None
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stderr.close()
