"""Settings: secrets never print, placeholders are refused, care switches reach the worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ground.settings import Settings, settings_problem
from networks.facebook.settings import FacebookSettings
from networks.registry import network_settings
from networks.x.settings import XSettings
from worker.scheduler import care_options


def test_tokens_never_appear_in_repr_or_dump() -> None:
    s = Settings(x_bearer_token="real-secret-123", facebook_page_token="fb-secret-456")
    assert "real-secret-123" not in repr(s) and "fb-secret-456" not in str(s.model_dump())
    x, fb = XSettings.of(s), FacebookSettings.of(s)
    assert "real-secret-123" not in repr(x) and "fb-secret-456" not in repr(fb)
    assert x.bearer_token is not None and x.bearer_token.get_secret_value() == "real-secret-123"


def test_placeholder_tokens_are_refused_with_a_clear_reason() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        XSettings.of(Settings(x_bearer_token="changeme"))
    with pytest.raises(ValidationError, match="placeholder"):
        FacebookSettings(page_token=" Token ")


def test_each_network_reads_its_own_variables_and_keywords_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCUCHA_X_PAGE_SIZE", "50")
    monkeypatch.setenv("ESCUCHA_X_MENTIONS_POLL_SECONDS", "15")
    monkeypatch.setenv("ESCUCHA_FACEBOOK_ENABLED", "false")
    settings = Settings(_env_file=None, x_brand_username="marca")  # type: ignore[call-arg]
    x = network_settings(settings, "x")
    assert isinstance(x, XSettings) and (x.page_size, x.brand_username) == (50, "marca")
    assert x.source_poll_seconds("mentions") == 15 and x.source_poll_seconds("dms") == x.poll_seconds == 60
    assert not network_settings(settings, "facebook").source_enabled("feed")
    assert XSettings.of(Settings(_env_file=None, x_page_size=20)).page_size == 20  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="less than or equal to 100"):
        XSettings.of(Settings(_env_file=None, x_page_size=500))  # type: ignore[call-arg]


def test_care_switches_reach_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCUCHA_ACK_DMS", "false")
    monkeypatch.setenv("ESCUCHA_SATISFACTION_SURVEY", "true")
    options = care_options(Settings())
    assert (options.ack_dms, options.updates, options.satisfaction) == (False, True, True)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://", "needs a host"),
        ("postgresql:///escucha", "needs a host"),
        ("postgresql://db.example", "needs a database name"),
        ("postgres://db.example/", "needs a database name"),
        ("postgresql://db.example:99999/escucha", "port"),
        ("not a url", "not a database URL"),
        ("mysql://db.example/escucha", "sqlite"),
    ],
)
def test_database_urls_without_a_host_or_a_database_are_refused(url: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as caught:
        Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    assert [e["loc"] for e in caught.value.errors()] == [("database_url",)]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///escucha.db",
        "sqlite://",
        "postgresql://escucha@db.example/escucha",
        "postgres://db.example:5433/escucha",
        "postgresql+psycopg://u:p@127.0.0.1/test?options=-csearch_path%3Dx",
        "postgresql:///escucha?host=/var/run/postgresql",
    ],
)
def test_database_urls_with_a_host_and_a_database_are_kept(url: str) -> None:
    assert Settings(_env_file=None, database_url=url).database_url == url  # type: ignore[call-arg]


def test_other_out_of_range_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="http or https URL"):
        Settings(_env_file=None, sandbox_url="localhost:8000")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="longer than ESCUCHA_HTTP_TIMEOUT_SECONDS"):
        Settings(_env_file=None, http_timeout_seconds=30, sending_lease_seconds=10)  # type: ignore[call-arg]


def test_a_refused_value_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, database_url="postgresql://", fetch_retries=99)  # type: ignore[call-arg]
    line = settings_problem(caught.value, "ESCUCHA_")
    assert "\n" not in line
    assert line.startswith("ESCUCHA_DATABASE_URL: ") and "ESCUCHA_FETCH_RETRIES: " in line
    with pytest.raises(ValidationError) as caught:
        XSettings.of(Settings(_env_file=None, x_bearer_token="changeme"))  # type: ignore[call-arg]
    line = settings_problem(caught.value, "ESCUCHA_X_")
    assert line.startswith("ESCUCHA_X_BEARER_TOKEN: ") and "changeme" not in line
