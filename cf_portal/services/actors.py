"""Who is acting. Every state handler resolves the actor again on the server, never from the UI."""

from __future__ import annotations

from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.models import Account, User
from cf_portal.services.errors import NotFound
from cf_portal.services.seed import DEMO_OWNER_EMAIL


class Actor(BaseModel):
    user_id: int
    user_name: str
    account_id: int
    account_name: str


def actor_for_user(session: Session, user_id: int) -> Actor:
    row = session.exec(
        select(User, Account).join(Account, Account.id == User.account_id).where(User.id == user_id)
    ).first()
    if row is None:
        raise NotFound("Your user")
    user, account = row
    return Actor(user_id=user.id, user_name=user.name, account_id=account.id, account_name=account.name)


def demo_user_id(session: Session) -> int:
    """The owner of the seeded demo account (demo mode signs everyone in as this user)."""
    user = session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).first()
    if user is None:
        raise NotFound("The demo account (run `make run` or `python -m cf_portal.cli seed`)")
    return user.id
