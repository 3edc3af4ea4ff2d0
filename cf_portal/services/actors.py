"""Who is acting. Every state handler resolves the actor again on the server (from the session token, see
`cf_portal.services.auth.actor_for_token`), never from the UI, and asks it for the permission it needs."""

from __future__ import annotations

from pydantic import BaseModel

from cf_portal.services import roles
from cf_portal.services.errors import NotAllowed
from cf_portal.services.roles import Permission


class Actor(BaseModel):
    user_id: int
    user_name: str
    email: str = ""
    role: str
    account_id: int
    account_name: str

    def can(self, permission: Permission) -> bool:
        return roles.allows(self.role, permission)

    def require(self, permission: Permission) -> Actor:
        if not self.can(permission):
            raise NotAllowed(roles.REFUSALS[permission])
        return self


def actor_for_user(session, user_id: int) -> Actor:  # noqa: ANN001
    """The actor for a user id the server already trusts (commands, jobs and tests; never a browser's id)."""
    from sqlmodel import select

    from cf_portal.models import Account, User
    from cf_portal.services.errors import NotFound

    row = session.exec(
        select(User, Account).join(Account, Account.id == User.account_id).where(User.id == user_id)
    ).first()
    if row is None:
        raise NotFound("Your user")
    user, account = row
    return Actor(user_id=user.id, user_name=user.name, email=user.email, role=user.role, account_id=account.id,
                 account_name=account.name)
