"""Settings fail fast on unsafe combinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cf_portal.settings import Settings


@pytest.mark.parametrize("key", ["sk_live_abc123", "rk_live_abc123"])
def test_demo_mode_is_refused_with_a_live_stripe_key(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", key)
    monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", "pk_live_abc123")
    monkeypatch.setenv("CF_PAYMENT_PROVIDER", "stripe")
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


def test_https_needs_the_number_of_proxies_said_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a proxy every visitor has the proxy's address: without the hops one person's failed sign-ins
    would lock everyone out, so HTTPS (secure cookies) is refused until the operator says how many there are."""
    monkeypatch.setenv("CF_SECURE_COOKIES", "true")
    monkeypatch.setenv("CF_ALLOWED_ORIGINS", "https://licenses.example.com")
    monkeypatch.delenv("CF_TRUSTED_PROXY_HOPS", raising=False)
    with pytest.raises(ValidationError, match="CF_TRUSTED_PROXY_HOPS"):
        Settings(_env_file=None)
    for hops in (0, 1, 2):  # 0 said explicitly: the portal is reached directly
        monkeypatch.setenv("CF_TRUSTED_PROXY_HOPS", str(hops))
        assert Settings(_env_file=None).trusted_proxy_hops == hops
    monkeypatch.setenv("CF_TRUSTED_PROXY_HOPS", "-1")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
    monkeypatch.delenv("CF_SECURE_COOKIES")
    monkeypatch.delenv("CF_TRUSTED_PROXY_HOPS")
    monkeypatch.delenv("CF_ALLOWED_ORIGINS")
    assert Settings(_env_file=None).trusted_proxy_hops == 0


def test_reflex_reads_the_client_address_through_the_trusted_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import rxconfig
    from cf_portal import settings

    monkeypatch.setenv("CF_TRUSTED_PROXY_HOPS", "2")
    settings.get_settings.cache_clear()
    try:
        assert importlib.reload(rxconfig).config.trusted_proxy_hops == 2
    finally:
        monkeypatch.delenv("CF_TRUSTED_PROXY_HOPS")
        settings.get_settings.cache_clear()
        importlib.reload(rxconfig)


def test_outside_demo_mode_the_payment_provider_must_be_said_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox takes no money: a production install must not fall back to it silently."""
    monkeypatch.setenv("CF_DEMO_MODE", "false")
    monkeypatch.delenv("CF_PAYMENT_PROVIDER", raising=False)
    with pytest.raises(ValidationError, match="CF_PAYMENT_PROVIDER"):
        Settings(_env_file=None)
    monkeypatch.setenv("CF_PAYMENT_PROVIDER", "sandbox")
    assert Settings(_env_file=None).payment_provider == "sandbox"
    monkeypatch.setenv("CF_DEMO_MODE", "true")
    monkeypatch.delenv("CF_PAYMENT_PROVIDER")
    assert Settings(_env_file=None).payment_provider == "sandbox"  # the offline demo needs no setting


def test_a_catalog_file_that_is_not_there_stops_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("CF_CATALOG_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(ValidationError, match="CF_CATALOG_FILE"):
        Settings(_env_file=None)


def test_only_the_portals_own_origins_may_open_its_websocket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reflex's default CORS is "*"; the portal's is this machine's port, or the origins the operator names
    (required behind HTTPS, where the portal has a public address)."""
    monkeypatch.delenv("CF_ALLOWED_ORIGINS", raising=False)
    monkeypatch.setenv("CF_PORT", "8080")
    assert Settings(_env_file=None).origins == ["http://localhost:8080", "http://127.0.0.1:8080"]
    monkeypatch.setenv("CF_ALLOWED_ORIGINS", "https://licenses.example.com/, https://portal.example.com")
    with pytest.raises(ValidationError, match="CF_SECURE_COOKIES=true"):  # HTTPS without secure cookies
        Settings(_env_file=None)
    monkeypatch.setenv("CF_SECURE_COOKIES", "true")
    monkeypatch.setenv("CF_TRUSTED_PROXY_HOPS", "1")
    assert Settings(_env_file=None).origins == ["https://licenses.example.com", "https://portal.example.com"]
    monkeypatch.delenv("CF_SECURE_COOKIES")
    monkeypatch.delenv("CF_TRUSTED_PROXY_HOPS")
    monkeypatch.setenv("CF_ALLOWED_ORIGINS", "licenses.example.com")
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(_env_file=None)
    monkeypatch.delenv("CF_ALLOWED_ORIGINS")
    monkeypatch.setenv("CF_SECURE_COOKIES", "true")
    monkeypatch.setenv("CF_TRUSTED_PROXY_HOPS", "1")
    with pytest.raises(ValidationError, match="CF_ALLOWED_ORIGINS"):
        Settings(_env_file=None)


def test_the_public_address_behind_a_proxy_is_checked_and_becomes_the_allowed_origin(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CF_ALLOWED_ORIGINS", raising=False)
    monkeypatch.setenv("CF_SECURE_COOKIES", "true")
    monkeypatch.setenv("CF_TRUSTED_PROXY_HOPS", "1")
    monkeypatch.setenv("CF_PUBLIC_URL", "https://licenses.example.com:8443/")
    settings = Settings(_env_file=None)
    assert settings.public_url == "https://licenses.example.com:8443"
    assert settings.origins == ["https://licenses.example.com:8443"]
    for wrong in ("licenses.example.com", "https://licenses.example.com/portal", "https://"):
        monkeypatch.setenv("CF_PUBLIC_URL", wrong)
        with pytest.raises(ValidationError, match="CF_PUBLIC_URL"):
            Settings(_env_file=None)
    monkeypatch.setenv("CF_PUBLIC_URL", "https://licenses.example.com")
    monkeypatch.setenv("CF_ALLOWED_ORIGINS", "https://portal.example.com")
    with pytest.raises(ValidationError, match="missing from CF_ALLOWED_ORIGINS"):
        Settings(_env_file=None)
    monkeypatch.delenv("CF_ALLOWED_ORIGINS")
    monkeypatch.delenv("CF_SECURE_COOKIES")
    monkeypatch.delenv("CF_TRUSTED_PROXY_HOPS")
    with pytest.raises(ValidationError, match="CF_SECURE_COOKIES=true"):  # an https:// address needs it
        Settings(_env_file=None)
