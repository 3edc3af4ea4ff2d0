"""A real SMTP server in this process (aiosmtpd) on a free loopback port, for the email tests: it keeps what
arrives, can answer the next messages with an error (`refuse_next`), can ask for a user name and password, and can
speak TLS with a certificate (STARTTLS required, or TLS from the first byte as smtps)."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Arrived:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage

    def part(self, subtype: str) -> str:
        return self.message.get_body(preferencelist=(subtype,)).get_content().replace("\r\n", "\n")


@dataclass
class SmtpServer:
    port: int
    arrived: list[Arrived] = field(default_factory=list)
    # Answers given instead of "250" to the next messages, in order ("451 ...": try later; "550 ...": never).
    refusals: list[str] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    implicit_tls: bool = False
    tls_sessions: int = 0  # messages that arrived over TLS

    def url(self, credentials: str = "") -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    def refuse_next(self, *answers: str) -> None:
        self.refusals.extend(answers)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 (aiosmtpd's hook)
        if self.refusals:
            return self.refusals.pop(0)
        if server.transport.get_extra_info("ssl_object") is not None:  # after STARTTLS, or smtps from the start
            self.tls_sessions += 1
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.arrived.append(Arrived(mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), message=message))
        return "250 OK"


@contextmanager
def smtp_server(*, password: str | None = None, tls: tuple[Path, Path] | None = None,
                implicit_tls: bool = False) -> Iterator[SmtpServer]:
    """Started for the block; with `password`, it offers AUTH (without `tls`: over plain text, loopback only) and
    accepts only user "mailer" with that password. With `tls` (certificate, key): STARTTLS offered and required
    before any mail or login, or, with `implicit_tls`, TLS from the start (smtps)."""
    state = SmtpServer(port=free_port(), implicit_tls=implicit_tls)

    def authenticator(server, session, envelope, mechanism, data) -> AuthResult:  # noqa: ANN001
        if isinstance(data, LoginPassword):
            user, given = data.login.decode(), data.password.decode()
            state.logins.append((user, given))
            return AuthResult(success=user == "mailer" and given == password, handled=False)
        return AuthResult(success=False, handled=False)

    # (aiosmtpd's auth_require_tls knows STARTTLS only: on smtps it would hide AUTH, though all of it is TLS.)
    extra: dict = {"authenticator": authenticator,
                   "auth_require_tls": tls is not None and not implicit_tls} if password else {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        if implicit_tls:
            extra["ssl_context"] = context
        else:
            extra.update(tls_context=context, require_starttls=True)
    controller = Controller(state, hostname="127.0.0.1", port=state.port, **extra)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()
