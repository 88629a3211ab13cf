"""Configuration: read from a mapping (the environment by default), converted and checked."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import ClassVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tracker.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///instance/tracker.db"
SECRET_KEY_FILE = "secret_key"


@dataclass(frozen=True)
class Waits:
    """How long each caller waits for the database before it gives up, in seconds (tracker.waits).

    Each request limit leaves room to answer: a webhook's 503 within 4 s (Shopify gives up at 5),
    /healthz within 2 s, a page view within 5 s, a report within 15 s."""

    connect: float = 3.0  # TRACKER_DB_CONNECT_TIMEOUT: one connection attempt
    webhook: float = 3.0  # TRACKER_DB_WAIT_WEBHOOK: a webhook delivery's database work
    health: float = 1.0  # TRACKER_DB_WAIT_HEALTH: the health check's
    collect: float = 3.0  # TRACKER_DB_WAIT_COLLECT: a page view's commit (the server answers within 1 s more)
    report: float = 13.0  # TRACKER_DB_WAIT_REPORT: a report page's, CSV's or JSON's
    statement: float = 600.0  # TRACKER_DB_STATEMENT_LIMIT: one statement of a command or the build

    ENV: ClassVar[dict[str, str]] = {
        "connect": "TRACKER_DB_CONNECT_TIMEOUT",
        "webhook": "TRACKER_DB_WAIT_WEBHOOK",
        "health": "TRACKER_DB_WAIT_HEALTH",
        "collect": "TRACKER_DB_WAIT_COLLECT",
        "report": "TRACKER_DB_WAIT_REPORT",
        "statement": "TRACKER_DB_STATEMENT_LIMIT",
    }

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Waits:
        values = {}
        for name, variable in cls.ENV.items():
            raw = env.get(variable, "").strip()
            if not raw:
                continue
            try:
                seconds = float(raw)
            except ValueError:
                seconds = float("nan")
            if not 0.1 <= seconds <= 86_400:
                raise ConfigError(
                    f"{variable} must be a number of seconds between 0.1 and 86400, not {raw!r}."
                )
            values[name] = seconds
        return cls(**values)


@dataclass(frozen=True)
class Config:
    database_url: str
    secret_key: str
    trusted_proxies: int = 0
    instance_path: Path = field(default_factory=lambda: Path("instance"))
    testing: bool = False
    waits: Waits = field(default_factory=Waits)
    # The morning email (reports.digest): the mail server, the From address, the report's address.
    smtp_url: str | None = None
    mail_from: str = "tracker@localhost"
    base_url: str = "http://127.0.0.1:8000"
    # The nightly build and digest inside `tracker serve` (reports.nightly): on or off, the local
    # time each site's run starts, and how often the server looks (seconds).
    nightly: bool = True
    nightly_at: time = time(1, 15)
    nightly_check: float = 60.0

    @classmethod
    def from_mapping(cls, env: Mapping[str, str] | None = None, **overrides) -> Config:
        """Build a Config from environment-style strings; a bad value raises ConfigError."""
        env = dict(os.environ if env is None else env)
        instance = Path(env.get("TRACKER_INSTANCE_PATH", "instance"))
        url = env.get("TRACKER_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
        url = _check_database_url(url, instance)
        proxies_raw = env.get("TRACKER_TRUSTED_PROXIES", "0").strip() or "0"
        try:
            proxies = int(proxies_raw)
        except ValueError:
            raise ConfigError(
                f"TRACKER_TRUSTED_PROXIES must be a whole number of proxy hops, not {proxies_raw!r}."
            ) from None
        if proxies < 0 or proxies > 10:
            raise ConfigError("TRACKER_TRUSTED_PROXIES must be between 0 and 10.")
        secret = env.get("TRACKER_SECRET_KEY", "").strip()
        if secret and len(secret) < 16:
            raise ConfigError("TRACKER_SECRET_KEY must be at least 16 characters long.")
        if not secret:
            secret = _instance_secret(instance)
        values = dict(
            database_url=url,
            secret_key=secret,
            trusted_proxies=proxies,
            instance_path=instance,
            waits=Waits.from_mapping(env),
            smtp_url=env.get("TRACKER_SMTP_URL", "").strip() or None,
            mail_from=env.get("TRACKER_MAIL_FROM", "").strip() or "tracker@localhost",
            base_url=env.get("TRACKER_BASE_URL", "").strip() or "http://127.0.0.1:8000",
            nightly=env.get("TRACKER_NIGHTLY", "1").strip().lower() not in ("0", "false", "no", "off"),
            nightly_at=_clock(env.get("TRACKER_NIGHTLY_AT", "").strip() or "01:15"),
            nightly_check=_seconds(env, "TRACKER_NIGHTLY_CHECK", 60.0),
        )
        values.update(overrides)
        return cls(**values)


def _clock(raw: str) -> time:
    try:
        hours, minutes = (int(part) for part in raw.split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ConfigError(f"TRACKER_NIGHTLY_AT must be a local time like 01:15, not {raw!r}.") from None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 86_400:
        raise ConfigError(f"{name} must be a number of seconds between 0.1 and 86400, not {raw!r}.")
    return value


def _check_database_url(url: str, instance: Path) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"TRACKER_DATABASE_URL is not a database URL: {url!r} "
            "(expected sqlite:///path.db or postgresql+psycopg://user@host/db)."
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"TRACKER_DATABASE_URL must point at SQLite or PostgreSQL, not {backend!r}."
        )
    if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        # psycopg 3 is the driver we ship; a bare postgresql:// URL would ask for psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
        url = parsed.render_as_string(hide_password=False)
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return url


def _instance_secret(instance: Path) -> str:
    """Generate the secret key once into the instance folder and reuse it afterwards."""
    path = instance / SECRET_KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
