"""The audit trail: who did what to which object, and when (the `audit_event` table).

An event is written in the same transaction as the change it records, so it exists exactly when the change
does. `record` is for what a member did; `event` builds one for anyone else (the payment provider, a job, a
member who has just joined) or for a caller that adds its events later.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from cf_portal import clock
from cf_portal.models import AuditEvent
from cf_portal.services.actors import Actor

DETAIL_MAX = 500  # the column's length


def event(*, account_id: int, user_id: int | None, action: str, object_type: str, object_id: int | None = None,
          detail: str = "", at: datetime | None = None) -> AuditEvent:
    """One event of `account_id`; `user_id` None when no member did it (the provider, a job)."""
    return AuditEvent(account_id=account_id, actor_user_id=user_id, action=action, object_type=object_type,
                      object_id=object_id, detail=detail[:DETAIL_MAX], created_at=at or clock.now())


def record(session: Session, actor: Actor, action: str, object_type: str, object_id: int | None = None,
           detail: str = "", *, at: datetime | None = None) -> None:
    """What `actor` did, added to `session` (written with the change it records)."""
    session.add(event(account_id=actor.account_id, user_id=actor.user_id, action=action, object_type=object_type,
                      object_id=object_id, detail=detail, at=at))
