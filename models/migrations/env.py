"""Alembic environment: runs migrations on the engine handed over by ``models.schema.migrate``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata
# Tables other libraries own in the same database (APScheduler's job store): never ours to migrate.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave tables that other libraries own out of migrations and comparisons."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def run_migrations_online() -> None:
    """Run migrations against the configured engine."""
    engine = context.config.attributes.get("engine")
    if engine is None:
        from ground.db import get_engine

        engine = get_engine()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it into a new one and dropping the old: with foreign keys enforced,
            # dropping ``author`` or ``reply`` while rows point at them fails on any database with data. The pragma
            # only changes outside a transaction, so it is set before the migrations' transaction begins.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


run_migrations_online()
