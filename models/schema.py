"""The schema: Alembic migrations, and throw-away databases that carry it (benches and tests)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables)
from ground.db import make_engine, normalise_url

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
