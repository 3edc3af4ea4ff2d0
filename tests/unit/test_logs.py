"""What reaches the app's log: ids, never tokens or invitation links, and no raw text from strangers."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from cf_portal.db import session_scope
from cf_portal.models import Account, User
from cf_portal.services import members
from tests.unit.conftest import NOW, Seeded


def test_an_invitation_is_logged_by_its_id_never_by_its_link_token_or_email(seeded: Seeded,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with session_scope(seeded.engine) as session:
        created = members.invite(session, actor=seeded.actor, email="New.Hire@Example.com", role="viewer",
                                 base_url="https://portal.example", now=NOW)
        invitation_id = members.list_invitations(session, account_id=seeded.actor.account_id, now=NOW)[0].id
    token = created.link.split("token=")[1]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert token not in logged and "token=" not in logged and "new.hire" not in logged.lower(), logged
    assert f"invitation {invitation_id}" in logged  # the operator can still find it (and its audit event)


def test_database_errors_do_not_carry_the_values_into_logs(seeded: Seeded) -> None:
    """A failing statement's message would otherwise list all its parameters (names, password hashes, ...), and
    `log.exception` writes that message to the log. (PostgreSQL's own DETAIL line still names the value of the
    key that clashed: here the email.)"""
    with pytest.raises(sa.exc.IntegrityError) as caught, session_scope(seeded.engine) as session:
        account = session.get(Account, seeded.actor.account_id)
        session.add(User(account_id=account.id, name="Mallory\nFAKE LOG LINE", email=seeded.actor.email,
                         role="viewer", password_hash="$argon2id$secret-hash"))
        session.flush()
    assert "secret-hash" not in str(caught.value) and "FAKE LOG LINE" not in str(caught.value), caught.value


@pytest.mark.parametrize(("text", "shown"), [
    ("plain words", "'plain words'"),
    ("two\nlines", "'two\\nlines'"),
    ("\x1b[31mred", "'\\x1b[31mred'"),
    ("gpj\u202eexe", "'gpj\\u202eexe'"),
    ("x" * 300, repr("x" * 80) + "…"),
])
def test_client_text_is_quoted_escaped_and_cut_for_the_log(text: str, shown: str) -> None:
    from cf_portal.services.validation import printable

    assert printable(text) == shown


def test_reconcile_reports_a_license_name_escaped() -> None:
    """`reconcile` prints license names (typed by customers, possibly before names were checked) to the operator's
    terminal: an escape sequence or a right-to-left override in one must not rewrite or hide the report."""
    from cf_portal.services.provider_sync import Drift

    line = str(Drift(7, 3, "Team\x1b[2J\u202eA", "has no subscription at the provider"))
    assert "\x1b" not in line and "\u202e" not in line and "'Team\\x1b[2J\\u202eA'" in line, line
