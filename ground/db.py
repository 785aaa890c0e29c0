"""The database engine and sessions, for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

from ground.errors import UserError

# How long a PostgreSQL connection attempt may take before the database counts as unreachable (libpq waits for
# the operating system's TCP timeout otherwise, minutes on a silent network); a connect_timeout in the URL wins.
CONNECT_TIMEOUT_S = 10


class DatabaseUnreachable(UserError):
    """The configured database cannot be opened (wrong host or port, down, refused credentials, no such file)."""


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the review app read while the worker writes; busy_timeout waits instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


# Values per IN (…), well under every backend's limit on bound parameters: longer lists go in several statements.
IN_CHUNK = 500

POOL_SIZE = 15  # connections a PostgreSQL engine keeps open once used
POOL_OVERFLOW = 5  # more, opened for a burst and closed after it


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings each backend needs."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if "connect_timeout" not in make_url(url).query:
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
    # Keep as many connections as a worker's threads use at once (stages, polls, the outbox's senders: 9-13 seen
    # under load). With the default 5, the rest were overflow, closed on return and opened again a moment later:
    # a new server process each time, and its cold caches, on the machine's two cores (issue 17). A connection is
    # kept only once it was needed, so a quiet process still holds few.
    kwargs.setdefault("pool_size", POOL_SIZE)
    kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def check_reachable(engine: Engine) -> None:
    """Open one connection, or raise ``DatabaseUnreachable`` with one line (the password hidden)."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnreachable(f"cannot reach the database {where}: {reason} (check ESCUCHA_DATABASE_URL)") from exc


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    """Return the process-wide engine for ``url`` (default: the configured database)."""
    if url is None:
        from ground.settings import get_settings

        url = get_settings().database_url
    return make_engine(url)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
