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
    raise RuntimeError("The Stripe provider is not part of this release; unset CF_PAYMENT_PROVIDER to use the sandbox.")
