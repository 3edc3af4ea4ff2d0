"""Email (services/emails.py): each message is queued in the transaction of its change, rendered from the
templates (HTML escaped, plain text beside it, absolute links), and delivered by `deliver_due` to a real SMTP
server in this process (aiosmtpd), with retries; without CF_SMTP_URL it goes to the Sent emails log."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal import settings
from cf_portal.db import session_scope
from cf_portal.models import Account, EmailMessage, Employee, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import emails, members, seats
from cf_portal.services.actors import actor_for_user
from cf_portal.services.auth import FormErrors
from cf_portal.services.errors import NotAllowed, NotFound
from cf_portal.services.rate_limit import TokenBuckets
from cf_portal.services.seats import Holder
from tests.support.nginx import self_signed_certificate
from tests.support.smtp_server import smtp_server
from tests.unit.conftest import NOW, Seeded
from tests.unit.test_renewals import bill, billed_to_declining_card, buy, month

PUBLIC = "http://portal.example:8080"
SUPPORT = "help@cf.example"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read afresh from what each test sets; no SMTP server unless the test names one."""
    for name in ("CF_SMTP_URL", "CF_SMTP_USERNAME", "CF_SMTP_PASSWORD", "CF_ALLOWED_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CF_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("CF_SUPPORT_EMAIL", SUPPORT)
    monkeypatch.setenv("CF_EMAIL_FROM", "ChatFortress <no-reply@cf.example>")
    monkeypatch.setattr(emails, "CONTACT_LIMIT", TokenBuckets(rate=1 / 600, burst=5))  # counts of this test only
    settings.get_settings.cache_clear()
    yield monkeypatch
    settings.get_settings.cache_clear()


def use_smtp(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("CF_SMTP_URL", url)
    settings.get_settings.cache_clear()


def outbox(seeded: Seeded, kind: str | None = None) -> list[EmailMessage]:
    with session_scope(seeded.engine, write=False) as session:
        query = select(EmailMessage).order_by(EmailMessage.id)
        if kind:
            query = query.where(EmailMessage.kind == kind)
        return list(session.exec(query).all())


def invite(seeded: Seeded, email: str = "new.hire@example.com") -> members.InvitationCreated:
    with session_scope(seeded.engine) as session:
        return members.invite(session, actor=seeded.actor, email=email, role="license_admin", base_url=PUBLIC,
                              now=NOW)


def deliver(seeded: Seeded, at=NOW) -> dict[str, int]:  # noqa: ANN001
    return emails.deliver_due(seeded.engine, now=at)


def test_an_invitation_arrives_with_both_parts_the_link_and_the_headers(seeded: Seeded, env) -> None:  # noqa: ANN001
    created = invite(seeded)
    [row] = outbox(seeded)
    token = created.link.split("token=")[1]
    # Waiting in the outbox: the bodies do not hold the token (only `secret` does, until sent).
    assert token not in row.text_body and token not in row.html_body and row.secret == token
    with smtp_server() as server:
        use_smtp(env, server.url())
        assert deliver(seeded) == {"sent": 1}
    [mail] = server.arrived
    assert mail.rcpt_tos == ["new.hire@example.com"]
    assert mail.message["To"] == "new.hire@example.com"
    assert mail.message["From"] == "ChatFortress <no-reply@cf.example>"
    assert mail.message["Subject"] == f"{seeded.actor.user_name} invited you to {seeded.actor.account_name} on " \
                                      "ChatFortress"
    assert mail.message.get_content_type() == "multipart/alternative"
    text, html = mail.part("plain"), mail.part("html")
    assert created.link == f"{PUBLIC}/invitation?token={token}"
    assert created.link in text and f'href="{created.link}"' in html
    assert seeded.actor.account_name in text and "License admin" in text
    assert "List-Unsubscribe" not in mail.message  # a transactional message
    # Sent: the token is gone from the database; the log shows the message without it.
    [row] = outbox(seeded)
    assert (row.status, row.secret, row.transport, row.attempts) == ("sent", None, "smtp", 1)
    with session_scope(seeded.engine, write=False) as session:
        shown = emails.sent_email(session, actor=seeded.actor, message_id=row.id)
    assert token not in shown.text and emails.SECRET_REMOVED in shown.text


def test_names_are_escaped_in_html_and_plain_in_text(seeded: Seeded, env) -> None:  # noqa: ANN001
    name = '<script>alert("x")</script> & Sons'
    with session_scope(seeded.engine) as session:
        session.get(Account, seeded.actor.account_id).name = name
    invite(seeded)
    with smtp_server() as server:
        use_smtp(env, server.url())
        deliver(seeded)
    [mail] = server.arrived
    html, text = mail.part("html"), mail.part("plain")
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Sons" in html
    assert name in text and "&lt;" not in text


def test_a_rolled_back_change_queues_no_message(seeded: Seeded, env) -> None:  # noqa: ANN001
    with pytest.raises(RuntimeError), session_scope(seeded.engine) as session:
        members.invite(session, actor=seeded.actor, email="x@example.com", role="viewer", base_url=PUBLIC, now=NOW)
        assert len(session.exec(select(EmailMessage)).all()) == 1  # queued in this very transaction
        raise RuntimeError("the change fails after the message was queued")
    assert outbox(seeded) == []


def test_a_temporary_refusal_is_retried_later_and_a_permanent_one_fails_at_once(seeded: Seeded, env) -> None:  # noqa: ANN001
    invite(seeded, "first@example.com")
    invite(seeded, "second@example.com")
    with smtp_server() as server:
        use_smtp(env, server.url())
        server.refuse_next("451 4.3.0 try again later", "550 5.1.1 no such mailbox")
        assert deliver(seeded) == {"retrying": 1, "failed": 1}
        first, second = outbox(seeded)
        assert (first.status, first.attempts, first.next_attempt_at) == ("queued", 1, NOW + timedelta(minutes=1))
        assert "451" in first.last_error and first.secret is not None  # still needed for the next attempt
        assert (second.status, second.secret) == ("failed", None) and "550" in second.last_error
        assert deliver(seeded, NOW + timedelta(seconds=30)) == {}  # not before its time
        assert deliver(seeded, NOW + timedelta(minutes=1)) == {"sent": 1}
    assert [m.rcpt_tos for m in server.arrived] == [["first@example.com"]]
    with session_scope(seeded.engine, write=False) as session:
        log = emails.list_sent(session, actor=seeded.actor)
    assert [(r.recipient, r.status) for r in log] == [("second@example.com", "failed"), ("first@example.com", "sent")]
    assert "no such mailbox" in log[0].error


def test_no_server_answering_fails_after_the_last_retry(seeded: Seeded, env) -> None:  # noqa: ANN001
    invite(seeded)
    with smtp_server() as server:
        closed = server.url()
    use_smtp(env, closed)  # nothing listens there any more
    at = NOW
    for _ in range(emails.MAX_ATTEMPTS - 1):
        assert deliver(seeded, at) == {"retrying": 1}
        at = outbox(seeded)[0].next_attempt_at
    assert deliver(seeded, at) == {"failed": 1}
    [row] = outbox(seeded)
    assert (row.status, row.attempts, row.secret) == ("failed", emails.MAX_ATTEMPTS, None)
    assert row.last_error == "could not reach the SMTP server (ConnectionRefusedError)"


def test_smtp_credentials_are_used_and_never_logged_or_stored(seeded: Seeded, env, caplog) -> None:  # noqa: ANN001
    password = "s3cret-Pa55word"
    invite(seeded, "a@example.com")
    invite(seeded, "b@example.com")
    with caplog.at_level(logging.DEBUG), smtp_server(password=password) as server:
        use_smtp(env, server.url(f"mailer:{password}-wrong"))
        assert deliver(seeded) == {"retrying": 2}
        assert "refused the user name or password" in outbox(seeded)[0].last_error
        env.delenv("CF_SMTP_URL")
        env.setenv("CF_SMTP_URL", server.url())
        env.setenv("CF_SMTP_USERNAME", "mailer")
        env.setenv("CF_SMTP_PASSWORD", password)
        settings.get_settings.cache_clear()
        assert deliver(seeded, NOW + timedelta(minutes=1)) == {"sent": 2}
        assert repr(settings.get_settings()).count(password) == 0
    assert server.logins[-1] == ("mailer", password) and len(server.arrived) == 2
    assert password not in caplog.text and "s3cret" not in caplog.text
    with seeded.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(sa.select(EmailMessage.__table__)) for v in row)
    assert "s3cret" not in dump


def test_without_smtp_messages_go_to_the_sent_emails_log_with_their_link(seeded: Seeded, env) -> None:  # noqa: ANN001
    created = invite(seeded)
    assert deliver(seeded) == {"sent": 1}
    [row] = outbox(seeded)
    token = created.link.split("token=")[1]
    assert (row.status, row.transport, row.secret) == ("sent", "log", token)
    with session_scope(seeded.engine, write=False) as session:
        [listed] = emails.list_sent(session, actor=seeded.actor)
        shown = emails.sent_email(session, actor=seeded.actor, message_id=listed.id)
    assert created.link in shown.text and created.link in shown.html
    # Kept as long as the invitation can be accepted, then dropped by purge-expired.
    assert emails.LINK_KEPT == timedelta(days=members.INVITATION_DAYS)
    with session_scope(seeded.engine) as session:
        emails.purge_finished(session, now=NOW + emails.LINK_KEPT - timedelta(minutes=1))
    assert outbox(seeded)[0].secret == token
    with session_scope(seeded.engine) as session:
        emails.purge_finished(session, now=NOW + emails.LINK_KEPT + timedelta(minutes=1))
        shown = emails.sent_email(session, actor=seeded.actor, message_id=listed.id)
    assert outbox(seeded)[0].secret is None and token not in shown.text and emails.SECRET_REMOVED in shown.text


def test_a_billing_admin_reading_the_log_never_sees_an_invitations_link(seeded: Seeded, env) -> None:  # noqa: ANN001
    """In the in-app log mode the log is the invitation's mailbox, but billing admins read it too: with the link
    they could join as the invited person, in the invited role (an owner, say). Only members who may invite (owners)
    see it there."""
    with session_scope(seeded.engine) as session:
        created = members.invite(session, actor=seeded.actor, email="second.owner@example.com", role="owner",
                                 base_url=PUBLIC, now=NOW)
        billing = User(account_id=seeded.actor.account_id, name="B", email="billing@example.com", role="billing_admin")
        session.add(billing)
        session.flush()
        billing_actor = actor_for_user(session, billing.id)
    assert deliver(seeded) == {"sent": 1}
    token = created.link.split("token=")[1]
    [row] = outbox(seeded)
    with session_scope(seeded.engine, write=False) as session:
        as_billing = emails.sent_email(session, actor=billing_actor, message_id=row.id)
        as_owner = emails.sent_email(session, actor=seeded.actor, message_id=row.id)
    assert token not in as_billing.text + as_billing.html and emails.SECRET_OWNERS_ONLY in as_billing.text
    assert created.link in as_owner.text and created.link in as_owner.html


def test_the_log_is_the_accounts_own_and_for_its_admins(seeded: Seeded, env) -> None:  # noqa: ANN001
    invite(seeded)
    [row] = outbox(seeded)
    other = seeded.other_actor()
    with session_scope(seeded.engine) as session:
        assert emails.list_sent(session, actor=other) == []
        with pytest.raises(NotFound):
            emails.sent_email(session, actor=other, message_id=row.id)
        viewer = User(account_id=seeded.actor.account_id, name="V", email="viewer@example.com", role="viewer")
        session.add(viewer)
        session.flush()
        with pytest.raises(NotAllowed):
            emails.list_sent(session, actor=actor_for_user(session, viewer.id))


def test_receipts_payment_failed_suspended_and_coupon_ending(seeded: Seeded, provider: SandboxProvider,
                                                             env) -> None:  # noqa: ANN001
    card = seeded.add_card(provider).id
    lic = buy(seeded, provider, card, coupon="SPRING15", name="Sales <team>")
    receipts = outbox(seeded, "purchase_receipt")
    with session_scope(seeded.engine, write=False) as session:  # to each owner and billing admin
        admins = session.exec(select(User.email).where(User.account_id == seeded.actor.account_id,
                                                       User.role.in_(("owner", "billing_admin")))).all()
    assert sorted(r.to_address for r in receipts) == sorted(admins) and seeded.actor.email in admins
    receipt = receipts[0]
    assert "Sales <team>" in receipt.text_body and "Sales &lt;team&gt;" in receipt.html_body
    assert "Total paid: $" in receipt.text_body and f"{PUBLIC}/billing" in receipt.text_body
    bill(seeded, provider, month(lic, 1))
    assert len(outbox(seeded, "renewal_receipt")) == len(admins) and outbox(seeded, "coupon_ending") == []
    bill(seeded, provider, month(lic, 2))  # the 3rd and last month SPRING15 discounts
    ending = outbox(seeded, "coupon_ending")[0]
    assert len(outbox(seeded, "coupon_ending")) == len(admins)
    assert "SPRING15" in ending.text_body and "Unsubscribe" in ending.text_body
    billed_to_declining_card(seeded, provider, lic)
    first = month(lic, 3)
    bill(seeded, provider, first)
    failed = outbox(seeded, "payment_failed")[0]
    assert failed.subject == "Action needed: the payment for Sales <team> failed"
    assert f"{PUBLIC}/licenses/manage?id={lic.id}" in failed.text_body
    for day in (1, 3, 5):
        bill(seeded, provider, first + timedelta(days=day))
    assert len(outbox(seeded, "payment_failed")) == 3 * len(admins)
    assert len(outbox(seeded, "license_suspended")) == len(admins)
    with smtp_server() as server:
        use_smtp(env, server.url())
        deliver(seeded, first + timedelta(days=6))
    coupon_mail = next(m for m in server.arrived if "coupon" in m.message["Subject"])
    assert coupon_mail.message["List-Unsubscribe"] == f"<{PUBLIC}/settings#email>"


def test_seat_access_emails_only_when_the_account_asks(seeded: Seeded, provider: SandboxProvider, env) -> None:  # noqa: ANN001
    lic = buy(seeded, provider, seeded.add_card(provider).id)
    with session_scope(seeded.engine) as session:
        people = session.exec(select(Employee).where(Employee.account_id == seeded.actor.account_id)
                              .order_by(Employee.id).limit(2)).all()
        seats.assign(session, actor=seeded.actor, license_id=lic.id,
                     holders=[Holder(kind="employee", id=people[0].id)], now=NOW)
    assert outbox(seeded, "seat_access") == []
    with session_scope(seeded.engine) as session:
        session.get(Account, seeded.actor.account_id).email_seat_access = True
    with session_scope(seeded.engine) as session:
        seats.assign(session, actor=seeded.actor, license_id=lic.id,
                     holders=[Holder(kind="employee", id=people[1].id)], now=NOW)
    [mail] = outbox(seeded, "seat_access")
    assert mail.to_address == people[1].email and mail.subject.startswith("You now have access to ")


def test_contact_us_checks_the_fields_and_sends_to_support_with_the_context(seeded: Seeded, env) -> None:  # noqa: ANN001
    with pytest.raises(FormErrors) as refused, session_scope(seeded.engine) as session:
        emails.send_to_support(session, actor=seeded.actor, subject=" ", message="", page="/licenses")
    assert {e.field for e in refused.value.errors} == {"subject", "message"}
    with session_scope(seeded.engine) as session:
        emails.send_to_support(session, actor=seeded.actor, subject="Seats <b>", message="How do I\nmove a seat?",
                               page="//evil.example/x", now=NOW)
    with smtp_server() as server:
        use_smtp(env, server.url())
        deliver(seeded)
    [mail] = server.arrived
    assert mail.rcpt_tos == [SUPPORT] and mail.message["Reply-To"] == seeded.actor.email
    assert mail.message["Subject"] == "[Contact us] Seats <b>"
    text = mail.part("plain")
    assert "How do I\nmove a seat?" in text and seeded.actor.account_name in text and seeded.actor.user_name in text
    assert f"Sent from {PUBLIC}/licenses" in text  # a page of this portal only
    assert "Seats &lt;b&gt;" in mail.part("html")


def test_every_message_renders_with_absolute_links() -> None:
    for kind in emails.KINDS:
        assert (emails._templates.get_template(f"{kind}.html") and emails._templates.get_template(f"{kind}.txt"))
    text = emails.render("license_suspended", account="A", reference="R", product="P", next_attempt="",
                         fix_url="https://x.example/licenses/manage?id=1").text
    assert re.search(r"https?://\S+/settings#email", text)


def test_contact_us_is_rate_limited_per_member(seeded: Seeded, env) -> None:  # noqa: ANN001
    limit = TokenBuckets(rate=1 / 600, burst=2, clock=lambda: 0.0)
    for n in range(2):
        with session_scope(seeded.engine) as session:
            emails.send_to_support(session, actor=seeded.actor, subject=f"S{n}", message="m", page="/", limit=limit)
    with pytest.raises(emails.DomainError, match="try again in 10 minutes"), session_scope(seeded.engine) as session:
        emails.send_to_support(session, actor=seeded.actor, subject="S3", message="m", page="/", limit=limit)
    other = seeded.other_actor()
    with session_scope(seeded.engine) as session:  # another member is not held up
        emails.send_to_support(session, actor=other, subject="S", message="m", page="/", limit=limit)
    assert len(outbox(seeded, "contact")) == 3


def test_the_emailed_link_uses_the_configured_address_not_the_browsers(seeded: Seeded, env) -> None:  # noqa: ANN001
    """The dialog's copy of the link follows the address the browser used; the email must not (a forged Host header
    would otherwise send someone's invitation token to another site)."""
    with session_scope(seeded.engine) as session:
        created = members.invite(session, actor=seeded.actor, email="z@example.com", role="viewer",
                                 base_url="http://evil.example", now=NOW)
    deliver(seeded)
    with session_scope(seeded.engine, write=False) as session:
        [row] = emails.list_sent(session, actor=seeded.actor)
        shown = emails.sent_email(session, actor=seeded.actor, message_id=row.id)
    token = created.link.split("token=")[1]
    assert f"{PUBLIC}/invitation?token={token}" in shown.text and "evil.example" not in shown.text + shown.html


def test_the_app_sends_queued_emails_itself_unless_told_not_to(seeded: Seeded, env) -> None:  # noqa: ANN001
    import asyncio

    from cf_portal import webhook_worker
    from cf_portal.cf_portal import app
    from tests.support.events import run_on_a_loop

    assert webhook_worker.email_worker in app.get_lifespan_tasks()
    with session_scope(seeded.engine) as session:
        emails.send_to_support(session, actor=seeded.actor, subject="S", message="m", page="/")

    async def run_worker_while(condition, seconds: float) -> None:  # noqa: ANN001
        async with webhook_worker.email_worker(engine=seeded.engine, interval_s=0.05):
            for _ in range(int(seconds / 0.05)):
                if condition():
                    return
                await asyncio.sleep(0.05)

    env.setenv("CF_EMAIL_WORKER", "off")
    settings.get_settings.cache_clear()
    run_on_a_loop(run_worker_while(lambda: False, 0.5))
    assert [m.status for m in outbox(seeded)] == ["queued"]
    env.setenv("CF_EMAIL_WORKER", "app")
    settings.get_settings.cache_clear()
    run_on_a_loop(run_worker_while(lambda: outbox(seeded)[0].status == "sent", 20))
    assert [(m.status, m.transport) for m in outbox(seeded)] == [("sent", "log")]


def test_sent_and_failed_emails_are_purged_after_90_days_queued_ones_never(seeded: Seeded, env) -> None:  # noqa: ANN001
    invite(seeded, "a@example.com")
    invite(seeded, "b@example.com")
    deliver(seeded)  # both sent (to the log)
    invite(seeded, "c@example.com")  # left queued (due next year)
    with session_scope(seeded.engine) as session:
        session.execute(sa.update(EmailMessage).where(EmailMessage.to_address == "c@example.com")
                        .values(next_attempt_at=NOW + timedelta(days=365)))
    with session_scope(seeded.engine) as session:
        assert emails.purge_finished(session, now=NOW + timedelta(days=89)) == 0
        assert emails.purge_finished(session, now=NOW + timedelta(days=91)) == 2
    assert [m.to_address for m in outbox(seeded)] == ["c@example.com"]


def test_nothing_goes_in_clear_text_to_a_server_without_starttls(seeded: Seeded, env) -> None:  # noqa: ANN001
    invite(seeded)
    env.setattr(emails.SmtpServer, "_loopback", lambda self: False)  # as if the server were across a network
    with smtp_server() as server:  # offers no STARTTLS
        use_smtp(env, server.url())
        assert deliver(seeded) == {"retrying": 1}
    assert server.arrived == []
    assert outbox(seeded)[0].last_error == "the SMTP server offers no STARTTLS: nothing was sent in clear text"


@pytest.fixture
def certificate(tmp_path) -> tuple:  # noqa: ANN001
    """A self-signed certificate for 127.0.0.1 (openssl), and its key."""
    return self_signed_certificate(tmp_path)


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
def test_mail_and_password_go_over_tls_to_a_server_whose_certificate_is_trusted(
        seeded: Seeded, env, certificate, implicit_tls: bool) -> None:  # noqa: ANN001
    """smtp:// upgrades with STARTTLS (the server here refuses mail and login before it), smtps:// speaks TLS from
    the start; the certificate is checked against the trusted ones (SSL_CERT_FILE here: the test's own)."""
    invite(seeded)
    env.setenv("SSL_CERT_FILE", str(certificate[0]))
    env.setattr(emails.SmtpServer, "_loopback", lambda self: False)  # as if the server were across a network
    with smtp_server(password="tls-Pa55word", tls=certificate, implicit_tls=implicit_tls) as server:
        use_smtp(env, server.url("mailer:tls-Pa55word"))
        assert deliver(seeded) == {"sent": 1}
    assert (len(server.arrived), server.tls_sessions, server.logins) == (1, 1, [("mailer", "tls-Pa55word")])


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
def test_a_certificate_that_is_not_trusted_gets_nothing_not_even_the_password(
        seeded: Seeded, env, certificate, implicit_tls: bool) -> None:  # noqa: ANN001
    invite(seeded)
    env.delenv("SSL_CERT_FILE", raising=False)  # the system's authorities only: they never signed this one
    with smtp_server(password="tls-Pa55word", tls=certificate, implicit_tls=implicit_tls) as server:
        use_smtp(env, server.url("mailer:tls-Pa55word"))
        assert deliver(seeded) == {"retrying": 1}
    assert (server.arrived, server.logins) == ([], [])
    error = outbox(seeded)[0].last_error
    assert error == "the SMTP server's TLS certificate is not trusted (self-signed certificate): nothing was sent"
