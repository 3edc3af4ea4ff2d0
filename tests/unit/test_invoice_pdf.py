"""Invoice PDFs (services/invoice_pdf.py) and their download routes (cf_portal/api.py), read back as text: the
lines and totals, names printed as typed, and only ever the signed-in member's own account's invoices."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlmodel import select
from starlette.testclient import TestClient

from cf_portal import api, clock, db, settings
from cf_portal.db import session_scope
from cf_portal.middleware import SESSION_COOKIE, PortalMiddleware
from cf_portal.models import Account, Invoice, User
from cf_portal.services import auth, invoice_pdf
from cf_portal.services.errors import NotFound
from tests.factories import make_invoice, make_license
from tests.unit.conftest import Seeded

ISSUED = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TRICKY_NAME = "Zoë & Søn <script>alert(1)</script> Ωmega Кириллица"


def pdf_text(data: bytes) -> str:
    """The PDF's text, its whitespace (table cells wrap) made single spaces."""
    assert data.startswith(b"%PDF-")
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


@dataclass
class Billed:
    invoice_id: int
    number: str
    other_invoice_id: int


@pytest.fixture
def billed(seeded: Seeded) -> Billed:
    """The demo account (renamed to a name with markup and non-Latin letters) with a discounted invoice of two
    lines, and another account with an invoice of its own."""
    other = seeded.other_actor()
    with session_scope(seeded.engine) as session:
        account = session.get(Account, seeded.actor.account_id)
        account.name = TRICKY_NAME
        lic = make_license(session, account, seeded.plans["phishing-standard"], quantity=3,
                           reference_name="Helpdesk <b>team</b>")
        invoice = make_invoice(session, lic, created_at=ISSUED, discount=730, number="CF-2026-0007", lines=[
            ("Helpdesk <b>team</b> · Phishing Simulator Standard × 3", 3, 1200),
            ("Helpdesk <b>team</b> · 2 more · Phishing Simulator Standard (prorated)", 2, 500)])
        other_lic = make_license(session, session.get(Account, other.account_id), seeded.plans["phishing-standard"],
                                 reference_name="Other Corp secrets")
        other_invoice = make_invoice(session, other_lic, lines=[("Other Corp secrets · Phishing", 1, 1200)])
        return Billed(invoice_id=invoice.id, number=invoice.number, other_invoice_id=other_invoice.id)


def test_the_pdf_has_the_company_number_date_lines_and_totals(seeded: Seeded, billed: Billed) -> None:
    with session_scope(seeded.engine, write=False) as session:
        document = invoice_pdf.invoice_document(session, account_id=seeded.actor.account_id,
                                                invoice_id=billed.invoice_id)
    text = pdf_text(invoice_pdf.render_pdf(document))
    assert TRICKY_NAME in text  # markup and non-Latin letters printed as typed
    assert "Invoice number: CF-2026-0007" in text and "Invoice date: Nov 29, 2026 (UTC)" in text
    assert "Status: Paid" in text
    # Each line: the license's reference name, what it is, the period, quantity, unit price, discount, amount.
    # 730 cents of discount shared 3600 : 1000 → 571 and 159.
    assert ("Helpdesk <b>team</b> Phishing Simulator Standard × 3 Nov 29, 2026 – Dec 29, 2026 "
            "3 $12.00 −$5.71 $36.00") in text
    assert ("Helpdesk <b>team</b> 2 more · Phishing Simulator Standard (prorated) Nov 29, 2026 – Dec 29, 2026 "
            "2 $5.00 −$1.59 $10.00") in text
    assert "Subtotal $46.00 Discount −$7.30 Total $38.70 Paid $38.70" in text
    assert document.filename == "invoice-CF-2026-0007.pdf"


def test_an_open_invoice_says_what_is_due(seeded: Seeded) -> None:
    with session_scope(seeded.engine) as session:
        lic = make_license(session, session.get(Account, seeded.actor.account_id), seeded.plans["phishing-standard"])
        invoice = make_invoice(session, lic, status="open", number="../../etc/passwd", lines=[("Team · x", 1, 1900)])
        document = invoice_pdf.invoice_document(session, account_id=seeded.actor.account_id, invoice_id=invoice.id)
    text = pdf_text(invoice_pdf.render_pdf(document))
    assert "Status: Due" in text and "Amount due $19.00" in text and "Paid $" not in text
    assert document.filename == "invoice-....etcpasswd.pdf"  # no folder, no quote: only a file name


def test_another_accounts_invoice_is_not_found(seeded: Seeded, billed: Billed) -> None:
    with session_scope(seeded.engine, write=False) as session, pytest.raises(NotFound):
        invoice_pdf.invoice_document(session, account_id=seeded.actor.account_id, invoice_id=billed.other_invoice_id)


@given(amounts=st.lists(st.integers(0, 10_000_000), min_size=1, max_size=8), data=st.data())
def test_the_lines_discounts_add_up_to_the_invoices(amounts: list[int], data: st.DataObject) -> None:
    discount = data.draw(st.integers(0, sum(amounts)))
    shares = invoice_pdf.share_discount(amounts, discount)
    assert sum(shares) == discount and all(share >= 0 for share in shares)


# --- the download routes ----------------------------------------------------------------------------------------

@pytest.fixture
def client(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("REFLEX_DB_URL", str(seeded.engine.url.render_as_string(hide_password=False)))
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    yield TestClient(PortalMiddleware(api.api), follow_redirects=False)
    db.get_engine().dispose()
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()


def signed_in(seeded: Seeded, user_id: int | None = None) -> dict[str, str]:
    with session_scope(seeded.engine) as session:
        token = auth.start_session(session, user_id=user_id or seeded.actor.user_id, remember=False,
                                   now=clock.now()).token
    return {"cookie": f"{SESSION_COOKIE}={token}"}


def test_a_member_downloads_their_accounts_invoice(client: TestClient, seeded: Seeded, billed: Billed) -> None:
    response = client.get(f"/billing/invoices/{billed.invoice_id}/pdf", headers=signed_in(seeded))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="invoice-CF-2026-0007.pdf"'
    assert response.headers["cache-control"] == "no-store"
    text = pdf_text(response.content)
    assert TRICKY_NAME in text and "Total $38.70" in text


def test_every_role_of_the_account_may_download(client: TestClient, seeded: Seeded, billed: Billed) -> None:
    with session_scope(seeded.engine) as session:
        viewer = User(account_id=seeded.actor.account_id, name="Vi", email="vi@acme.example", role="viewer")
        session.add(viewer)
        session.flush()
        viewer_id = viewer.id
    response = client.get(f"/billing/invoices/{billed.invoice_id}/pdf", headers=signed_in(seeded, viewer_id))
    assert response.status_code == 200


def test_another_accounts_invoice_id_is_404_and_reveals_nothing(client: TestClient, seeded: Seeded,
                                                                 billed: Billed) -> None:
    """The security check: a member of one account asks for another account's invoice by its id."""
    cookie = signed_in(seeded)
    for path in (f"/billing/invoices/{billed.other_invoice_id}/pdf",
                 f"/billing/invoices/{billed.other_invoice_id}/provider-pdf",
                 "/billing/invoices/999999/pdf"):
        response = client.get(path, headers=cookie)
        assert response.status_code == 404, path
        assert b"Other Corp" not in response.content and response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("cookie", ["", f"{SESSION_COOKIE}=not-a-session"], ids=["no-cookie", "unknown-session"])
def test_without_a_session_the_browser_is_sent_to_sign_in(client: TestClient, billed: Billed, cookie: str) -> None:
    response = client.get(f"/billing/invoices/{billed.invoice_id}/pdf", headers={"cookie": cookie} if cookie else {})
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fbilling"
    assert response.headers["cache-control"] == "no-store" and not response.content.startswith(b"%PDF")


def test_a_removed_member_is_refused(client: TestClient, seeded: Seeded, billed: Billed) -> None:
    cookie = signed_in(seeded)
    with session_scope(seeded.engine) as session:
        session.get(User, seeded.actor.user_id).removed_at = clock.now()
    assert client.get(f"/billing/invoices/{billed.invoice_id}/pdf", headers=cookie).status_code == 303


class HostingProvider:
    """A provider that keeps PDFs of its own (as Stripe does), recording what it is asked."""

    name = "stripe"
    hosts_invoice_documents = True

    def __init__(self) -> None:
        self.asked: list[str] = []

    def invoice_document_url(self, *, invoice_id: str) -> str | None:
        self.asked.append(invoice_id)
        return f"https://pay.stripe.com/invoice/{invoice_id}/pdf"


def test_stripes_pdf_is_a_redirect_asked_of_the_provider(client: TestClient, seeded: Seeded, billed: Billed,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(seeded.engine) as session:
        invoice = session.get(Invoice, billed.invoice_id)
        invoice.provider_invoice_id = "in_1MtHbELkdIwHu7ix"
        other = session.exec(select(Invoice).where(Invoice.id == billed.other_invoice_id)).one()
        other.provider_invoice_id = "in_other"
    hosting = HostingProvider()
    monkeypatch.setattr(api, "get_provider", lambda: hosting)
    cookie = signed_in(seeded)
    response = client.get(f"/billing/invoices/{billed.invoice_id}/provider-pdf", headers=cookie)
    assert response.status_code == 303
    assert response.headers["location"] == "https://pay.stripe.com/invoice/in_1MtHbELkdIwHu7ix/pdf"
    assert client.get(f"/billing/invoices/{billed.other_invoice_id}/provider-pdf", headers=cookie).status_code == 404
    assert hosting.asked == ["in_1MtHbELkdIwHu7ix"]  # never asked about the other account's invoice


def test_the_sandbox_keeps_no_pdf_of_its_own(client: TestClient, seeded: Seeded, billed: Billed) -> None:
    response = client.get(f"/billing/invoices/{billed.invoice_id}/provider-pdf", headers=signed_in(seeded))
    assert response.status_code == 404
