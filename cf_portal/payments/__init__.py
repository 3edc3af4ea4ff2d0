"""Payment providers. `get_provider()` gives the one the settings select."""

from __future__ import annotations

from functools import lru_cache

from cf_portal.payments.provider import PaymentProvider
from cf_portal.settings import get_settings


@lru_cache
def get_provider() -> PaymentProvider:
    settings = get_settings()
    if settings.payment_provider == "sandbox":
        from cf_portal.payments.sandbox import SandboxProvider

        return SandboxProvider()
    from cf_portal.payments.stripe_provider import StripeProvider

    return StripeProvider(settings.stripe_secret_key, api_base=settings.stripe_api_base)
