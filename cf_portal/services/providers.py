"""The payment provider the services work with, for callers outside services/ (the states): they get it here
and so never import cf_portal.payments themselves (tests/unit/test_layering.py)."""

from __future__ import annotations

from cf_portal.payments import get_provider
from cf_portal.payments.provider import PaymentProvider

__all__ = ["PaymentProvider", "get_provider"]
