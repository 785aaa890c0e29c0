"""Settings: secrets never print, placeholders are refused, care switches reach the worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ground.settings import Settings
from worker.scheduler import care_options


def test_tokens_never_appear_in_repr_or_dump() -> None:
    s = Settings(x_bearer_token="real-secret-123", facebook_page_token="fb-secret-456")
    assert "real-secret-123" not in repr(s) and "fb-secret-456" not in str(s.model_dump())
    assert s.x_bearer_token is not None and s.x_bearer_token.get_secret_value() == "real-secret-123"


def test_placeholder_tokens_are_refused_with_a_clear_reason() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(x_bearer_token="changeme")


def test_care_switches_reach_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCUCHA_ACK_DMS", "false")
    monkeypatch.setenv("ESCUCHA_SATISFACTION_SURVEY", "true")
    options = care_options(Settings())
    assert (options.ack_dms, options.updates, options.satisfaction) == (False, True, True)
