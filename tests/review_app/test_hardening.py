"""What a visitor who is not signed in can learn from the desk: no error details, no outside requests, loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from ground.db import get_engine, make_engine
from ground.settings import get_settings
from review_app import context
from review_app.i18n import t
from review_app.launch import APP, streamlit_command
from review_app.views.signin import EMAIL_KEY, PASSWORD_KEY
from tests.support.desk import TIMEOUT, desk_engine

# Nothing listens on port 1: connecting fails at once, with the host and port in the driver's message.
UNREACHABLE = "postgresql://escucha@127.0.0.1:1/escucha"


def everything_shown(at: AppTest) -> str:
    """Every text the page put on the screen, as one string."""
    parts: list[str] = []
    for kind in ("error", "warning", "info", "markdown", "text", "title", "subheader", "caption", "code", "exception"):
        parts += [str(getattr(el, "value", "")) for el in getattr(at, kind)]
    parts += [str(getattr(el, "stack_trace", "")) for el in at.exception]
    return "\n".join(parts)


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ESCUCHA_DATABASE_URL", UNREACHABLE)
    get_settings.cache_clear()
    get_engine.cache_clear()
    st.cache_resource.clear()
    monkeypatch.setattr(context, "build_senders", lambda settings: {})
    yield
    get_engine.cache_clear()
    get_settings.cache_clear()


def test_a_visitor_sees_no_traceback_host_or_port_when_the_database_is_unreachable(
    unreachable: None, caplog: pytest.LogCaptureFixture
) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    with caplog.at_level(logging.ERROR):
        at.run()
    assert not at.exception, "the page showed an exception"
    shown = everything_shown(at)
    assert [e.value for e in at.error] == [t("en", "app_error")]
    for secret in ("127.0.0.1", "port 1", "Traceback", ".py", "psycopg", "OperationalError", "escucha@"):
        assert secret not in shown, secret
    # The details are not lost: they are in the server's log.
    assert "127.0.0.1" in caplog.text


def test_signing_in_while_the_database_is_down_says_little(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for _engine in desk_engine(tmp_path, monkeypatch):
        from tests.support.desk import user

        user(_engine, "Vera Visitor", "agent")
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.session_state["lang"] = "en"
        at.run()
        down: Engine = make_engine(UNREACHABLE)
        monkeypatch.setattr(context, "engine", lambda: down)  # the database goes away between page and submit
        at.text_input(key=EMAIL_KEY).input("vera.visitor@test")
        at.text_input(key=PASSWORD_KEY).input("whatever it is")
        with caplog.at_level(logging.ERROR):
            at.button[-1].click().run()
        assert not at.exception
        shown = everything_shown(at)
        assert t("en", "app_error") in shown
        assert "127.0.0.1" not in shown and "Traceback" not in shown
        assert "127.0.0.1" in caplog.text
        down.dispose()


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_the_server_binds_loopback_by_default_and_shows_no_error_details(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCUCHA_REVIEW_ADDRESS", raising=False)
    get_settings.cache_clear()
    cmd = streamlit_command(port=8599)
    assert flag(cmd, "--server.address") == "127.0.0.1"
    assert flag(cmd, "--client.showErrorDetails") == "none"
    assert flag(cmd, "--server.port") == "8599"
    # A reverse proxy on another host: the address is a setting.
    monkeypatch.setenv("ESCUCHA_REVIEW_ADDRESS", "10.0.0.5")
    get_settings.cache_clear()
    assert flag(streamlit_command(port=8599), "--server.address") == "10.0.0.5"
    get_settings.cache_clear()


def test_the_page_icon_is_served_by_the_app_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ':material/…:' icon makes every browser fetch it from fonts.gstatic.com; ours is a file in the repo."""
    seen: list[dict[str, Any]] = []
    real = st.set_page_config

    def spy(**kwargs: Any) -> None:
        seen.append(kwargs)
        real(**kwargs)

    monkeypatch.setattr(st, "set_page_config", spy)
    for _engine in desk_engine(tmp_path, monkeypatch):
        AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert seen, "the app sets its page config"
    icon = seen[0]["page_icon"]
    assert isinstance(icon, str | Path) and Path(icon).is_file() and Path(icon).stat().st_size < 20_000
