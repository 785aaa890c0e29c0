"""The schema: Alembic migrations, and throw-away databases that carry it (benches and tests)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables)
from ground.db import check_reachable, make_engine, normalise_url
from ground.errors import UserError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """Build the Alembic configuration that targets ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with Alembic."""
    command.upgrade(alembic_config(engine), revision)


class SchemaNotReady(UserError):
    """The database has no Escucha schema, or an older or newer one than this version of Escucha."""


def require_schema(engine: Engine) -> None:
    """Check, without changing anything, that the schema is at this version's head; else say to run init-db."""
    where = engine.url.render_as_string(hide_password=True)
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
        # Connecting would create the file: a reader leaves no trace, not even an empty database.
        raise SchemaNotReady(f"the database {where} has no Escucha schema (no such file): run `escucha init-db` first")
    check_reachable(engine)
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    head = scripts.get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    if current is None:
        raise SchemaNotReady(f"the database {where} has no Escucha schema: run `escucha init-db` first")
    if current in {script.revision for script in scripts.walk_revisions()}:
        raise SchemaNotReady(
            f"the database {where} has an older schema (revision {current}, this version needs {head}): "
            "run `escucha init-db` to upgrade it"
        )
    raise SchemaNotReady(
        f"the database {where} has schema revision {current}, which this version of Escucha does not know "
        f"(it needs {head}): was it upgraded by a newer Escucha?"
    )


@contextmanager
def scratch_database(
    database_url: str | None = None, *, migrations: bool = False, prefix: str = "scratch"
) -> Iterator[Engine]:
    """A throw-away database with the schema: a temporary SQLite file, or a schema dropped afterwards on PostgreSQL.

    The schema comes from the models (fast) or, with ``migrations``, from Alembic (what production runs).
    """

    def build(engine: Engine) -> None:
        if migrations:
            migrate(engine)
        else:
            SQLModel.metadata.create_all(engine)

    if database_url is None:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
            try:
                build(engine)
                yield engine
            finally:
                engine.dispose()
        return
    url = normalise_url(database_url)
    if make_url(url).get_backend_name() != "postgresql":
        raise ValueError("a scratch database is a temporary SQLite file or a schema on PostgreSQL")
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    # The search_path option keeps every table in the throw-away schema without touching the models.
    engine = make_engine(f"{url}{sep}options=-csearch_path%3D{schema}")
    try:
        build(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
