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


def test_customers_migration_gives_every_existing_author_a_customer(db_url: str) -> None:
    """0011 backfills one customer per author already stored, and new customers get ids after theirs."""
    from sqlalchemy import text
    from sqlmodel import Session

    from models.customers import ensure_customers
    from models.tables import Author

    engine = make_engine(db_url)
    migrate(engine, "0008")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO author (network, external_id, username, display_name, followers_count, verified, "
                    f"updated_at) VALUES ('x', 'a{n}', 'u{n}', '', 0, false, CURRENT_TIMESTAMP)"
                )
            )
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, customer_id FROM author ORDER BY id")).all()
        assert len(rows) == 3 and all(c is not None for _, c in rows)
        assert len({c for _, c in rows}) == 3
        assert conn.execute(text("SELECT COUNT(*) FROM customer")).scalar_one() == 3
    with Session(engine) as s:
        fresh = Author(network="x", external_id="new", username="new")
        s.add(fresh)
        s.flush()
        assert fresh.id is not None
        made = ensure_customers(s, [fresh.id])
        s.commit()
        assert made[fresh.id] not in {c for _, c in rows}
    engine.dispose()
