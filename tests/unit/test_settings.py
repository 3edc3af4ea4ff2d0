"""Settings fail fast on unsafe combinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cf_portal.settings import Settings


@pytest.mark.parametrize("key", ["sk_live_abc123", "rk_live_abc123"])
def test_demo_mode_is_refused_with_a_live_stripe_key(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", key)
    monkeypatch.setenv("CF_DEMO_MODE", "true")
    with pytest.raises(ValidationError, match="demo mode"):
        Settings(_env_file=None)
    monkeypatch.setenv("CF_DEMO_MODE", "false")
    assert Settings(_env_file=None).demo_mode is False


def test_demo_mode_works_with_a_test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_abc123")
    monkeypatch.setenv("CF_DEMO_MODE", "true")
    settings = Settings(_env_file=None)
    assert settings.demo_mode and "sk_test_abc123" not in repr(settings)
