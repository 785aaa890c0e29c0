"""Alembic migrations build exactly the schema the SQLModel tables describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from ground.db import make_engine
from models.schema import migrate


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


def test_upgrade_keeps_existing_rows(db_url: str) -> None:
    """A database with data at 0001 upgrades to head without losing or rejecting rows."""
    from sqlalchemy import text

    engine = make_engine(db_url)
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO staff (name, email, role, languages, channels, senior, capacity, available, "
                          "created_at) VALUES ('Ana', 'ana@x', 'agent', 'es', 'public', false, 5, true, "
                          "CURRENT_TIMESTAMP)"))  # fmt: skip
        conn.execute(text("INSERT INTO sourcecursor (network, source, seen_ids, healthy, posts_ingested, "
                          "requests_made) VALUES ('x', 'mentions', '[]', true, 3, 1)"))  # fmt: skip
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT skills FROM staff")).scalar_one() == ""
        row = conn.execute(text("SELECT posts_ingested, month_requests FROM sourcecursor")).one()
        assert tuple(row) == (3, 0)
    engine.dispose()
