"""The Add License screen's rules: what is on sale, field checks and the price panel."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cf_portal.db import session_scope
from cf_portal.models import Plan
from cf_portal.services import checkout
from cf_portal.services.errors import DomainError
from tests.unit.conftest import NOW, Seeded


def test_retired_plans_are_not_offered(seeded: Seeded) -> None:
    with session_scope(seeded.engine) as session:
        session.execute(sa.update(Plan).where(Plan.code == "awareness-business").values(retired_at=NOW))
    with session_scope(seeded.engine, write=False) as session:
        catalog = checkout.load_catalog(session)
    offered = [(p.product_id, p.name) for p in catalog.plans]
    assert (seeded.plans["awareness-starter"].product_id, "Business") not in offered
    assert len(offered) == 6
    assert catalog.plans[0].label == "Starter — $9.00 per license / month"


@pytest.mark.parametrize(("text", "ok"), [("1", 1), (" 1,000 ", 1000), ("0", None), ("1001", None), ("-2", None),
                                          ("2.0", None), ("", None), ("ten", None)])
def test_quantity_is_a_whole_number_from_1_to_1000(text: str, ok: int | None) -> None:
    if ok is None:
        with pytest.raises(DomainError):
            checkout.check_quantity(text)
    else:
        assert checkout.check_quantity(text) == ok


def test_price_panel_says_what_you_pay_now_and_later(seeded: Seeded) -> None:
    with session_scope(seeded.engine, write=False) as session:
        panel = checkout.price_panel(session, plan_id=seeded.plans["phishing-standard"].id, quantity=10,
                                     coupon_code="spring15", now=NOW)
        bad = checkout.price_panel(session, plan_id=seeded.plans["darkweb-pro"].id, quantity=2,
                                   coupon_code="PHISH25", now=NOW)
    assert (panel.subtotal, panel.discount, panel.total_display) == ("$120.00", "−$18.00", "$102.00")
    assert panel.coupon_message == "15% off for 3 months" and panel.discount_note == "for 3 months"
    assert panel.after_discount == "Then $120.00 / month after the discount ends"
    assert (bad.coupon_status, bad.total_display) == ("invalid", "$58.00")
