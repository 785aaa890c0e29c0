"""User mistakes at the command line end in one line and a non-zero exit; readers never make or migrate a schema."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect
from typer.testing import CliRunner

from escucha.cli import app
from ground.db import get_engine, make_engine
from ground.settings import get_settings
from models.schema import migrate
from tests.support.paths import REPO

UNREACHABLE = "postgresql://escucha:s3cret-pass@127.0.0.1:1/escucha"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    # Each invocation reads its own environment, as a new process would.
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield
    get_settings.cache_clear()
    get_engine.cache_clear()


def _run(args: list[str], **env: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1", **env})
    assert "Traceback" not in result.output
    return result.exit_code, result.output.strip().splitlines()


def _tables(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        return sorted(inspect(engine).get_table_names())  # the catalogue gives no order
    finally:
        engine.dispose()


def test_a_database_url_without_host_or_database_is_one_line_naming_the_variable() -> None:
    for args in (["status"], ["init-db"], ["worker"], ["status", "--json"]):
        code, lines = _run(args, ESCUCHA_DATABASE_URL="postgresql://")
        assert code != 0 and len(lines) == 1, lines
        assert lines[0].startswith("error: ESCUCHA_DATABASE_URL: ") and "host" in lines[0]


def test_status_never_creates_or_migrates_a_schema(db_url: str) -> None:
    code, lines = _run(["status"], ESCUCHA_DATABASE_URL=db_url)
    assert code != 0 and len(lines) == 1, lines
    assert "no Escucha schema" in lines[0] and "escucha init-db" in lines[0]
    assert _tables(db_url) == []  # the reader left the database as it found it
    old = make_engine(db_url)
    migrate(old, "0003")
    old.dispose()
    before = _tables(db_url)
    code, lines = _run(["status", "--json"], ESCUCHA_DATABASE_URL=db_url)
    assert code != 0 and len(lines) == 1, lines
    assert "older" in lines[0] and "escucha init-db" in lines[0]
    assert _tables(db_url) == before
    code, lines = _run(["init-db"], ESCUCHA_DATABASE_URL=db_url)
    assert code == 0, lines
    code, lines = _run(["status", "--json"], ESCUCHA_DATABASE_URL=db_url)
    assert code == 0 and lines[0].startswith("{"), lines


def test_the_review_app_will_not_start_on_a_database_without_the_schema(sqlite_url: str) -> None:
    code, lines = _run(["review"], ESCUCHA_DATABASE_URL=sqlite_url)
    assert code != 0 and len(lines) == 1 and "escucha init-db" in lines[0], lines
    assert _tables(sqlite_url) == []


def test_an_unreachable_database_is_one_line_without_its_password() -> None:
    for args in (["status"], ["init-db"], ["worker"]):
        code, lines = _run(args, ESCUCHA_DATABASE_URL=UNREACHABLE)
        assert code != 0 and len(lines) == 1, (args, lines)
        assert lines[0].startswith("error: cannot reach the database postgresql+psycopg://escucha:***@127.0.0.1:1/")
        assert "s3cret-pass" not in lines[0]


def test_bad_setting_values_are_one_line_naming_the_variable(sqlite_url: str) -> None:
    code, lines = _run(["status"], ESCUCHA_DATABASE_URL=sqlite_url, ESCUCHA_FETCH_RETRIES="99")
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: ESCUCHA_FETCH_RETRIES: "), lines
    code, lines = _run(["worker"], ESCUCHA_DATABASE_URL=sqlite_url, ESCUCHA_X_PAGE_SIZE="500")
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: ESCUCHA_X_PAGE_SIZE: "), lines
    assert _tables(sqlite_url) == []  # refused before the worker touched the database


def test_an_unknown_log_level_is_one_line() -> None:
    code, lines = _run(["--log-level", "LOUD", "status"])
    assert code == 2 and len(lines) == 1, lines
    assert "--log-level" in lines[0] and "LOUD" in lines[0]


def test_a_missing_input_file_is_one_line(tmp_path: Path) -> None:
    for command in ("score", "evaluate"):
        code, lines = _run([command, str(tmp_path / "missing.tsv")])
        assert code == 2 and len(lines) == 1, lines
        assert "missing.tsv" in lines[0] and "does not exist" in lines[0]
    code, lines = _run(["score", str(tmp_path)])
    assert code == 2 and len(lines) == 1 and "is a directory" in lines[0], lines


def test_debug_shows_the_traceback() -> None:
    result = CliRunner().invoke(app, ["--debug", "status"], env={"ESCUCHA_DATABASE_URL": "postgresql://"})
    assert result.exit_code != 0
    assert isinstance(result.exception, ValidationError)  # raised on, not turned into one line


def test_the_installed_command_prints_one_line_and_a_traceback_only_with_debug() -> None:
    env = {**os.environ, "ESCUCHA_DATABASE_URL": "postgresql://", "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    command = [sys.executable, "-m", "escucha.cli"]
    plain = subprocess.run([*command, "status"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.strip().splitlines() == [plain.stderr.strip()] and "ESCUCHA_DATABASE_URL" in plain.stderr
    debug = subprocess.run(
        [*command, "--debug", "status"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ValidationError" in debug.stderr
