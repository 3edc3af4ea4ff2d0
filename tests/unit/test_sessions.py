"""Handing a new session to the browser's HttpOnly cookie: a one-time code, traded once, within a minute.

The tests of code hand-offs at the same moment are only real races on PostgreSQL (on SQLite writers queue up behind
`BEGIN IMMEDIATE`); `make test` runs them there too. See tests/support/concurrency.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import AuthSession
from cf_portal.services import auth
from cf_portal.services.errors import SignInRequired
from tests.support.concurrency import run_at_once
from tests.unit.conftest import NOW, Seeded


def new_handoff(seeded: Seeded, *, remember: bool = False) -> tuple[auth.SignedIn, str]:
    with session_scope(seeded.engine) as session:
        signed_in = auth.start_session(session, user_id=seeded.actor.user_id, remember=remember, now=NOW)
        return signed_in, auth.hand_off(session, signed_in, now=NOW)


def redeem(seeded: Seeded, code: str, at=NOW) -> auth.SignedIn | None:  # noqa: ANN001
    with session_scope(seeded.engine) as session:
        return auth.redeem_handoff(session, code, now=at)


def actor_of(seeded: Seeded, token: str):  # noqa: ANN201
    with session_scope(seeded.engine, write=False) as session:
        return auth.actor_for_token(session, token, now=NOW)


def test_the_code_is_traded_once_for_a_new_token_and_the_first_token_stops_working(seeded: Seeded) -> None:
    first, code = new_handoff(seeded, remember=True)
    cookie = redeem(seeded, code, NOW + timedelta(seconds=30))
    assert cookie is not None and cookie.remember and cookie.token not in (first.token, code)
    assert actor_of(seeded, cookie.token).user_id == seeded.actor.user_id
    with pytest.raises(SignInRequired):
        actor_of(seeded, first.token)  # only the cookie's token works
    with pytest.raises(SignInRequired):
        actor_of(seeded, code)  # a code is no session
    assert redeem(seeded, code, NOW + timedelta(seconds=31)) is None
    with session_scope(seeded.engine, write=False) as session:
        stored = session.exec(select(AuthSession).where(AuthSession.user_id == seeded.actor.user_id)).all()
    assert [(s.token_hash, s.handoff_hash) for s in stored] == [(auth.token_digest(cookie.token), None)]


def test_a_code_older_than_a_minute_or_unknown_is_refused(seeded: Seeded) -> None:
    _, code = new_handoff(seeded)
    assert redeem(seeded, code, NOW + timedelta(seconds=auth.HANDOFF_SECONDS + 1)) is None
    assert redeem(seeded, "") is None and redeem(seeded, "not-a-code") is None


def test_a_code_sent_twice_at_once_gives_one_session(seeded: Seeded) -> None:
    _, code = new_handoff(seeded)
    cookies: list[auth.SignedIn | None] = []
    run_at_once(6, lambda _i: cookies.append(redeem(seeded, code)))
    assert len(cookies) == 6 and sum(c is not None for c in cookies) == 1


def test_an_ended_session_cannot_be_handed_off(seeded: Seeded) -> None:
    with session_scope(seeded.engine) as session:
        signed_in = auth.start_session(session, user_id=seeded.actor.user_id, remember=False, now=NOW)
        auth.end_session(session, signed_in.token)
    with pytest.raises(SignInRequired), session_scope(seeded.engine) as session:
        auth.hand_off(session, signed_in, now=NOW)


def test_purge_deletes_sessions_whose_code_was_never_traded(seeded: Seeded) -> None:
    _, untraded = new_handoff(seeded)
    _, traded = new_handoff(seeded)
    kept = redeem(seeded, traded)
    with session_scope(seeded.engine) as session:
        auth.purge_expired(session, now=NOW + timedelta(minutes=5))
    assert actor_of(seeded, kept.token)
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(AuthSession).where(AuthSession.handoff_hash.is_not(None))).all() == []
