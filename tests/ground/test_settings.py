"""Settings: secrets never print, placeholders are refused, care switches reach the worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ground.settings import Settings
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
