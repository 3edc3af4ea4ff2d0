"""Feedback on the Help panels: stored for the actor's account and member, bounded, reported to the operator."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.help_content import TOPICS
from cf_portal.models import HELP_COMMENT_MAX, Account, HelpFeedback, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.help_feedback import PER_HOUR, feedback_report, record_feedback, report_lines
from tests.unit.conftest import NOW, Seeded


def send(seeded: Seeded, actor: Actor | None = None, *, page: str = "add_license", answer: str = "no",
         comment: str = "", at=NOW) -> int:  # noqa: ANN001
    with session_scope(seeded.engine) as session:
        return record_feedback(session, actor=actor or seeded.actor, page=page, answer=answer, comment=comment,
                               now=at)


def stored(seeded: Seeded) -> list[HelpFeedback]:
    with session_scope(seeded.engine, write=False) as session:
        return list(session.exec(select(HelpFeedback).order_by(HelpFeedback.id)))


def test_an_answer_is_stored_for_the_actors_account_and_member(seeded: Seeded) -> None:
    send(seeded, page="add_license", answer="no", comment="  What is a child account?  ")
    send(seeded, page="employees", answer="yes")
    rows = stored(seeded)
    assert [(r.account_id, r.user_id, r.page, r.answer, r.comment, r.created_at) for r in rows] == [
        (seeded.actor.account_id, seeded.actor.user_id, "add_license", "no", "What is a child account?", NOW),
        (seeded.actor.account_id, seeded.actor.user_id, "employees", "yes", "", NOW),
    ]


@pytest.mark.parametrize(("page", "answer", "error"), [
    ("billing", "yes", NotFound),  # no Help panel there
    ("../add_license", "yes", NotFound),
    ("add_license", "maybe", DomainError),
    ("add_license", "", DomainError),
])
def test_only_known_pages_and_yes_or_no_are_stored(seeded: Seeded, page: str, answer: str, error: type) -> None:
    with pytest.raises(error):
        send(seeded, page=page, answer=answer)
    assert stored(seeded) == []


def test_a_comment_is_bounded_and_cleaned(seeded: Seeded) -> None:
    with pytest.raises(DomainError) as refused:
        send(seeded, comment="x" * (HELP_COMMENT_MAX + 1))
    assert refused.value.field == "comment" and "1,000 characters" in refused.value.message
    send(seeded, comment="é" * HELP_COMMENT_MAX)  # characters, not bytes
    send(seeded, comment="line one\r\nline\x00 two\x1b[2J \u202eevil\u200b\tend")
    assert [r.comment for r in stored(seeded)] == ["é" * HELP_COMMENT_MAX, "line one\nline two[2J evil\tend"]


def test_the_database_refuses_a_longer_comment_too(seeded: Seeded) -> None:
    # The CHECK constraint on SQLite; the column's length already on PostgreSQL.
    with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError)), session_scope(seeded.engine) as session:
        session.add(HelpFeedback(account_id=seeded.actor.account_id, user_id=seeded.actor.user_id,
                                 page="licenses", answer="yes", comment="x" * (HELP_COMMENT_MAX + 1)))
        session.flush()
    with pytest.raises(sa.exc.IntegrityError), session_scope(seeded.engine) as session:
        session.add(HelpFeedback(account_id=seeded.actor.account_id, user_id=seeded.actor.user_id,
                                 page="licenses", answer="nah"))
        session.flush()


def test_a_member_cannot_flood_the_table(seeded: Seeded) -> None:
    for _ in range(PER_HOUR):
        send(seeded, at=NOW - timedelta(minutes=30))
    with pytest.raises(DomainError, match="try again later"):
        send(seeded)
    send(seeded, seeded.other_actor())  # another member is not held back
    send(seeded, at=NOW + timedelta(minutes=31))  # nor this one an hour later
    assert len(stored(seeded)) == PER_HOUR + 2


def test_the_report_counts_per_page_and_keeps_each_account_to_itself(seeded: Seeded) -> None:
    other = seeded.other_actor("Other Corp")
    send(seeded, page="add_license", answer="no", comment="Where do I type the coupon?")
    send(seeded, page="add_license", answer="yes")
    send(seeded, page="licenses", answer="yes", comment="Clear.", at=NOW + timedelta(minutes=1))
    send(seeded, other, page="add_license", answer="no", comment="Not yours")
    with session_scope(seeded.engine, write=False) as session:
        everyone = feedback_report(session)
        mine = feedback_report(session, account_id=seeded.actor.account_id)
        theirs = feedback_report(session, account_id=other.account_id)
    counts = {c.page: (c.yes, c.no) for c in everyone.counts}
    assert counts == {"add_license": (1, 2), "employees": (0, 0), "licenses": (1, 0)}
    assert list(counts) == list(TOPICS)
    assert {c.page: (c.yes, c.no) for c in mine.counts}["add_license"] == (1, 1)
    assert [c.comment for c in mine.comments] == ["Clear.", "Where do I type the coupon?"]  # newest first
    assert [(c.comment, c.account_name) for c in theirs.comments] == [("Not yours", "Other Corp")]
    assert "Not yours" not in "\n".join(report_lines(mine))


def test_the_report_since_a_time_and_with_few_comments(seeded: Seeded) -> None:
    send(seeded, page="employees", answer="no", comment="old", at=NOW - timedelta(days=10))
    send(seeded, page="employees", answer="yes", comment="new")
    with session_scope(seeded.engine, write=False) as session:
        recent = feedback_report(session, since=NOW - timedelta(days=1))
        one = feedback_report(session, recent=1)
    assert {c.page: (c.yes, c.no) for c in recent.counts}["employees"] == (1, 0)
    assert [c.comment for c in recent.comments] == ["new"]
    assert len(one.comments) == 1


def test_the_cli_prints_counts_and_comments_safely(cli_database: sa.Engine, seeded: Seeded,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from cf_portal import cli

    send(seeded, page="add_license", answer="no", comment="Which card is charged?\nFORGED 2026-01-01 line")
    with session_scope(seeded.engine) as session:  # a row written before the cleaning, straight into the table
        session.add(HelpFeedback(account_id=seeded.actor.account_id, user_id=seeded.actor.user_id, page="licenses",
                                 answer="yes", comment="\x1b[2J\x1b]0;owned\x07 hi", created_at=NOW))
    assert cli.main(["help-feedback"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[:5] == ["Help feedback:", "page             yes    no", "add_license        0     1",
                         "employees          0     0", "licenses           1     0"]
    assert "\x1b" not in out and "\x07" not in out
    assert not any(line.startswith("FORGED") for line in lines)
    assert "'Which card is charged?\\nFORGED 2026-01-01 line'" in out
    assert f"account {seeded.actor.account_id} 'Acme Security Ltd' member {seeded.actor.user_id}" in out

    assert cli.main(["help-feedback", "--since", "2030-01-01"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Help feedback since 2030-01-01T00:00:00+00:00:" and "No comments." in out


def test_an_expired_demo_copy_is_purged_with_its_feedback(seeded: Seeded, provider: SandboxProvider) -> None:
    from cf_portal.services.actors import actor_for_user
    from cf_portal.services.demo import purge_expired_copies

    with session_scope(seeded.engine) as session:
        account = Account(name="Demo copy", demo_expires_at=NOW - timedelta(days=1))
        session.add(account)
        session.flush()
        user = User(account_id=account.id, name="Visitor", email=f"visitor{account.id}@demo.example", role="owner")
        session.add(user)
        session.flush()
        visitor = actor_for_user(session, user.id)
    send(seeded, visitor, comment="demo")
    send(seeded)
    assert purge_expired_copies(seeded.engine, provider, now=NOW).deleted == 1
    assert [r.account_id for r in stored(seeded)] == [seeded.actor.account_id]
