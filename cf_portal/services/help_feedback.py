"""Feedback on the Help panels: "Did this answer your question?", Yes or No, and an optional comment.

A row belongs to the account and the member of the actor (never to ids a browser sends), so it is scoped like
everything else; the page must be one of the Help panels (cf_portal/help_content.py). A comment is trimmed, loses
characters that could hide or forge text (controls other than line breaks and tabs, bidirectional overrides,
zero-width spaces: `validation._hides_text`) and is refused beyond `HELP_COMMENT_MAX` characters, which a CHECK
constraint holds too. A member may send at most `PER_HOUR` answers an hour, so the table cannot be flooded.

The operator reads the answers with `python -m cf_portal.cli help-feedback` (`report_lines`): per page the Yes and
No counts, then the newest comments, every comment quoted and escaped (`validation.printable`), so a comment can
neither forge a line of the report nor send control sequences to the terminal.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.help_content import TOPICS
from cf_portal.models import HELP_COMMENT_MAX, Account, HelpFeedback
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.validation import _hides_text, printable

ANSWERS = ("yes", "no")
PER_HOUR = 30
_KEPT = frozenset("\n\t")


def clean_comment(text: str) -> str:
    """The comment as stored: NFC, line endings as "\\n", hiding characters left out, trimmed; refused when
    longer than `HELP_COMMENT_MAX` characters."""
    text = unicodedata.normalize("NFC", text or "").replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(char for char in text if char in _KEPT or not _hides_text(char)).strip()
    if len(text) > HELP_COMMENT_MAX:
        raise DomainError(f"Keep your comment to {HELP_COMMENT_MAX:,} characters (this has {len(text):,}).",
                          field="comment")
    return text


def record_feedback(session: Session, *, actor: Actor, page: str, answer: str, comment: str,
                    now: datetime) -> int:
    """Store `actor`'s answer to the Help panel of `page`; returns the row's id."""
    if page not in TOPICS:
        raise NotFound("That help page")
    if answer not in ANSWERS:
        raise DomainError("Choose Yes or No.", field="answer")
    text = clean_comment(comment)
    recent = session.exec(select(sa.func.count()).select_from(HelpFeedback).where(
        HelpFeedback.user_id == actor.user_id, HelpFeedback.created_at > now - timedelta(hours=1))).one()
    if recent >= PER_HOUR:
        raise DomainError("You have sent a lot of feedback in the last hour. Please try again later.")
    row = HelpFeedback(account_id=actor.account_id, user_id=actor.user_id, page=page, answer=answer, comment=text,
                       created_at=now)
    session.add(row)
    session.flush()
    return row.id


@dataclass(frozen=True)
class PageCounts:
    page: str
    yes: int
    no: int


@dataclass(frozen=True)
class FeedbackComment:
    created_at: datetime
    page: str
    answer: str
    account_id: int
    account_name: str
    user_id: int
    comment: str


@dataclass(frozen=True)
class FeedbackReport:
    counts: list[PageCounts]
    comments: list[FeedbackComment]  # newest first


def feedback_report(session: Session, *, since: datetime | None = None, account_id: int | None = None,
                    recent: int = 20) -> FeedbackReport:
    """Yes / No counts for every Help panel (zeros included) and the `recent` newest comments, from `since` on,
    of every account or of `account_id` only."""
    scope = []
    if since is not None:
        scope.append(HelpFeedback.created_at >= since)
    if account_id is not None:
        scope.append(HelpFeedback.account_id == account_id)
    totals = {(page, answer): count for page, answer, count in session.exec(
        select(HelpFeedback.page, HelpFeedback.answer, sa.func.count()).where(*scope)
        .group_by(HelpFeedback.page, HelpFeedback.answer)).all()}
    pages = list(TOPICS) + sorted({page for page, _ in totals} - set(TOPICS))
    counts = [PageCounts(page, totals.get((page, "yes"), 0), totals.get((page, "no"), 0)) for page in pages]
    rows = session.exec(
        select(HelpFeedback, Account.name).join(Account, Account.id == HelpFeedback.account_id)
        .where(*scope, HelpFeedback.comment != "")
        .order_by(HelpFeedback.created_at.desc(), HelpFeedback.id.desc()).limit(max(recent, 0))).all()
    comments = [FeedbackComment(created_at=row.created_at, page=row.page, answer=row.answer,
                                account_id=row.account_id, account_name=name, user_id=row.user_id,
                                comment=row.comment) for row, name in rows]
    return FeedbackReport(counts=counts, comments=comments)


def report_lines(report: FeedbackReport, *, since: datetime | None = None) -> list[str]:
    """The report as the operator reads it in a terminal; every text people typed is quoted and escaped."""
    lines = [f"Help feedback{f' since {since.isoformat()}' if since else ''}:",
             f"{'page':<14}{'yes':>6}{'no':>6}"]
    lines += [f"{c.page:<14}{c.yes:>6}{c.no:>6}" for c in report.counts]
    if not report.comments:
        lines.append("No comments.")
        return lines
    lines.append(f"Newest comments ({len(report.comments)}):")
    for c in report.comments:
        lines.append(f"{c.created_at:%Y-%m-%d %H:%M}Z {c.page} {c.answer} account {c.account_id} "
                     f"{printable(c.account_name, limit=60)} member {c.user_id}: {printable(c.comment, limit=400)}")
    return lines
