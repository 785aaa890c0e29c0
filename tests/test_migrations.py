"""Alembic migrations build exactly the schema the SQLModel tables describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from escucha.db import make_engine, migrate


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"post", "author", "score", "assignment", "reply", "staff", "sourcecursor", "auditevent"} <= tables
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    # Upgrading twice is a no-op, as `escucha init-db` must be safe to repeat.
    migrate(engine)
    engine.dispose()
