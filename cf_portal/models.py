"""Database tables. Every rule that a database can hold lives here as a constraint.

Money is always an integer amount of minor units (cents) plus an ISO currency code.
Times are timezone-aware UTC (stored as UTC; SQLite gets them back tagged as UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from cf_portal import clock

# Stable constraint names, so migrations can refer to them on SQLite and PostgreSQL alike.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp that is stored in UTC and always comes back timezone-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def created_at_field() -> datetime:
    return Field(default_factory=clock.now, sa_type=UTCDateTime, nullable=False)


def optional_time_field() -> datetime | None:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


def fk(target: str, *, nullable: bool = False, index: bool = True, ondelete: str | None = None):  # noqa: ANN201
    return Field(
        default=None,
        sa_column_args=[sa.ForeignKey(target, ondelete=ondelete)],
        nullable=nullable,
        index=index,
    )


# --- Customers -------------------------------------------------------------------------------


class Account(SQLModel, table=True):
    """A customer company."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    # Set when the account first needs the payment provider (customer id there).
    provider_customer_id: str | None = Field(default=None, max_length=64, unique=True)
    # The provider's SetupIntent the card form uses (Stripe): reused while it waits for a card, and the only one
    # whose confirmed card may be saved.
    card_setup_intent_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_at_field()
    # Set on a "Try the demo" visitor's own copy of the demo account: it stops working then, and
    # `cli purge-expired` deletes it. NULL for customers and for the seeded demo account (the template).
    demo_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True, index=True)
    # Email an employee "you now have access to <product>" when they get a seat (Settings; off by default).
    email_seat_access: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class Role(StrEnum):
    """What a member may do; `cf_portal.services.roles` maps each role to its permissions."""

    OWNER = "owner"
    BILLING_ADMIN = "billing_admin"
    LICENSE_ADMIN = "license_admin"
    VIEWER = "viewer"


ROLE_VALUES = ", ".join(f"'{role.value}'" for role in Role)


class User(SQLModel, table=True):
    """A member of an account who signs in. A member is removed by stamping `removed_at` (their name stays
    on the history they made); a removed member cannot sign in."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    name: str = Field(max_length=120)
    # Stored lower-cased; unique across the portal.
    email: str = Field(max_length=254, unique=True)
    role: str = Field(max_length=20)
    # An argon2id hash (argon2-cffi); NULL for a member who cannot sign in with a password (the seeded demo
    # people, who are reached with "Try the demo").
    password_hash: str | None = Field(default=None, max_length=200)
    removed_at: datetime | None = optional_time_field()
    created_at: datetime = created_at_field()

    __table_args__ = (
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
        sa.CheckConstraint(f"role IN ({ROLE_VALUES})", name="role_known"),
        sa.CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
    )


class AuthSession(SQLModel, table=True):
    """A signed-in browser. The browser keeps only the random token; this row keeps its SHA-256 digest, so a
    copy of the database cannot be used to sign in. Deleting the row signs the browser out."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = fk("user.id", ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    remember: bool = Field(default=False)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Signing in is judged over the websocket, but only an HTTP response can set an HttpOnly cookie: the
    # browser gets a one-time code (its digest here, valid until `handoff_until`) that the /auth/session
    # route trades for a new token, which only the cookie ever holds.
    handoff_hash: str | None = Field(default=None, max_length=64, unique=True, nullable=True)
    handoff_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)

    __table_args__ = (sa.CheckConstraint("expires_at > created_at", name="expires_after_creation"),
                      sa.CheckConstraint("(handoff_hash IS NULL) = (handoff_until IS NULL)",
                                         name="handoff_complete"))


class Invitation(SQLModel, table=True):
    """An owner's invitation for an email to join the account with a role. Works once, until it expires;
    like sessions, only the digest of its token is stored."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    email: str = Field(max_length=254)
    role: str = Field(max_length=20)
    token_hash: str = Field(max_length=64, unique=True)
    invited_by_user_id: int | None = fk("user.id", nullable=True, index=False)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    accepted_at: datetime | None = optional_time_field()
    accepted_user_id: int | None = fk("user.id", nullable=True, index=False)
    revoked_at: datetime | None = optional_time_field()

    __table_args__ = (
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
        sa.CheckConstraint(f"role IN ({ROLE_VALUES})", name="role_known"),
        sa.CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        sa.CheckConstraint("accepted_at IS NULL OR revoked_at IS NULL", name="accepted_or_revoked"),
        sa.CheckConstraint("(accepted_at IS NULL) = (accepted_user_id IS NULL)", name="accepted_by_a_user"),
        # One open invitation per email and account: inviting again replaces (revokes) the earlier one.
        sa.Index(
            "uq_invitation_open_per_email",
            "account_id",
            "email",
            unique=True,
            sqlite_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
            postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )


class Throttle(SQLModel, table=True):
    """Failed attempts per key ("signin-email:…", "signin-pair:…", "signin-client:…", "coupon-account:…"),
    counted in a window; `cf_portal.services.throttle` slows down and then (by its policy) locks a key that keeps
    failing."""

    key: str = Field(primary_key=True, max_length=300)
    failures: int = Field(default=0)
    window_started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_failure_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    locked_until: datetime | None = optional_time_field()

    __table_args__ = (sa.CheckConstraint("failures >= 0", name="failures_not_negative"),)


class Employee(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    name: str = Field(max_length=120)
    email: str = Field(max_length=254)
    department: str = Field(default="", max_length=80)
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()

    __table_args__ = (
        sa.UniqueConstraint("account_id", "email"),
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
        sa.CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        # The Employees grid's sort orders (services/employees.py: keyset paging reads one page along these);
        # by email, the unique constraint above serves.
        sa.Index("ix_employee_account_id_name_order", "account_id", sa.text("lower(name)"), "id"),
        sa.Index("ix_employee_account_id_department_order", "account_id", sa.text("lower(department)"), "id"),
    )


# The Employees grid's search index (services/search_index.py), which the models cannot declare: on PostgreSQL
# pg_trgm GIN indexes, on SQLite an FTS5 trigram table over employee's name and email kept in sync by triggers.
# Created with the employee table (create_all) and by migrations 0010 and 0011; a migration that rebuilds `employee` on
# SQLite (batch mode) drops the triggers and must create them again. `SEARCH_OBJECTS` are left out of the
# models-versus-migrations comparison (`in_models_schema`).
SEARCH_OBJECTS = ("employee_search", "ix_employee_name_trgm", "ix_employee_email_trgm")
SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE employee_search USING fts5(name, email, content='employee', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER employee_search_insert AFTER INSERT ON employee BEGIN "
    "INSERT INTO employee_search(rowid, name, email) VALUES (new.id, new.name, new.email); END",
    "CREATE TRIGGER employee_search_delete AFTER DELETE ON employee BEGIN "
    "INSERT INTO employee_search(employee_search, rowid, name, email) VALUES ('delete', old.id, old.name, old.email);"
    " END",
    "CREATE TRIGGER employee_search_update AFTER UPDATE OF name, email ON employee BEGIN "
    "INSERT INTO employee_search(employee_search, rowid, name, email) VALUES ('delete', old.id, old.name, old.email);"
    " INSERT INTO employee_search(rowid, name, email) VALUES (new.id, new.name, new.email); END",
)
# `fastupdate = off` (migration 0011 says why): a new row's trigrams go into the index at once, not into a pending
# list that every search would read until the next VACUUM.
POSTGRESQL_SEARCH_DDL = (
    "CREATE INDEX ix_employee_name_trgm ON employee USING gin (name gin_trgm_ops) WITH (fastupdate = off)",
    "CREATE INDEX ix_employee_email_trgm ON employee USING gin (email gin_trgm_ops) WITH (fastupdate = off)",
)

sa.event.listen(Employee.__table__, "before_create",
                sa.DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))
for _statement in SQLITE_SEARCH_DDL:
    sa.event.listen(Employee.__table__, "after_create", sa.DDL(_statement).execute_if(dialect="sqlite"))
for _statement in POSTGRESQL_SEARCH_DDL:
    sa.event.listen(Employee.__table__, "after_create", sa.DDL(_statement).execute_if(dialect="postgresql"))
sa.event.listen(Employee.__table__, "before_drop",
                sa.DDL("DROP TABLE IF EXISTS employee_search").execute_if(dialect="sqlite"))


def in_models_schema(name: str | None, type_: str, parent_names: dict) -> bool:  # noqa: ARG001
    """Alembic's `include_name`: everything but the search index, which the models cannot declare."""
    return not (name or "").startswith(SEARCH_OBJECTS)


class ChildAccount(SQLModel, table=True):
    """A sub-account (department, subsidiary or client business) that can hold a seat as a whole."""

    __tablename__ = "child_account"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    name: str = Field(max_length=120)
    contact_email: str = Field(max_length=254)
    created_at: datetime = created_at_field()

    __table_args__ = (
        sa.UniqueConstraint("account_id", "name"),
        sa.CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        # The entitlements API finds a child account by its contact email (`services.entitlements`).
        sa.Index("ix_child_account_account_id_contact_email", "account_id", "contact_email"),
    )


# --- Catalog ---------------------------------------------------------------------------------


class Product(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=120)
    description: str = Field(default="", max_length=400)
    sort_order: int = Field(default=0)


class Plan(SQLModel, table=True):
    """A tier of a product. Retired plans are no longer sold; licenses on them keep working."""

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = fk("product.id")
    code: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=80)
    # Price of one license for one month, in minor units of `currency`.
    unit_amount: int
    currency: str = Field(default="usd", max_length=3)
    retired_at: datetime | None = optional_time_field()
    sort_order: int = Field(default=0)

    __table_args__ = (
        sa.UniqueConstraint("product_id", "name"),
        sa.CheckConstraint("unit_amount >= 0", name="unit_amount_not_negative"),
        sa.CheckConstraint("currency = lower(currency) AND length(currency) = 3", name="currency_iso"),
    )


class CouponDuration(StrEnum):
    ONCE = "once"  # the first month only
    REPEATING = "repeating"  # duration_months months
    FOREVER = "forever"


class Coupon(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # Upper-cased and trimmed, so the code is unique and matched case-insensitively.
    code: str = Field(max_length=40, unique=True)
    percent_off: int | None = Field(default=None)
    amount_off: int | None = Field(default=None)  # minor units of `currency`
    currency: str | None = Field(default=None, max_length=3)
    duration: str = Field(default=CouponDuration.ONCE.value, max_length=12)
    duration_months: int | None = Field(default=None)
    expires_at: datetime | None = optional_time_field()
    max_redemptions: int | None = Field(default=None)
    times_redeemed: int = Field(default=0)
    min_quantity: int = Field(default=1)
    created_at: datetime = created_at_field()

    __table_args__ = (
        sa.CheckConstraint("code = upper(trim(code)) AND length(code) > 0", name="code_normalised"),
        sa.CheckConstraint(
            "(percent_off IS NOT NULL AND amount_off IS NULL AND percent_off BETWEEN 1 AND 100)"
            " OR (amount_off IS NOT NULL AND percent_off IS NULL AND amount_off > 0 AND currency IS NOT NULL)",
            name="one_kind_of_discount",
        ),
        sa.CheckConstraint(
            "(duration = 'repeating' AND duration_months IS NOT NULL AND duration_months >= 1)"
            " OR (duration IN ('once', 'forever') AND duration_months IS NULL)",
            name="duration_valid",
        ),
        sa.CheckConstraint("max_redemptions IS NULL OR max_redemptions >= 0", name="max_redemptions_valid"),
        # The redemption limit holds in the database: a conditional UPDATE can never push past it.
        sa.CheckConstraint(
            "times_redeemed >= 0 AND (max_redemptions IS NULL OR times_redeemed <= max_redemptions)",
            name="redemptions_within_limit",
        ),
        sa.CheckConstraint("min_quantity >= 1", name="min_quantity_positive"),
    )


class CouponProduct(SQLModel, table=True):
    """Restricts a coupon to some products; a coupon without rows here applies to every product."""

    __tablename__ = "coupon_product"

    coupon_id: int = Field(sa_column_args=[sa.ForeignKey("coupon.id", ondelete="CASCADE")], primary_key=True)
    product_id: int = Field(sa_column_args=[sa.ForeignKey("product.id", ondelete="CASCADE")], primary_key=True)


# --- Billing ---------------------------------------------------------------------------------


class PaymentMethod(SQLModel, table=True):
    """A saved card. Only what is safe to show is kept: never the number or the CVC."""

    __tablename__ = "payment_method"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    provider_id: str = Field(max_length=64, unique=True)
    brand: str = Field(max_length=20)
    last4: str = Field(max_length=4)
    exp_month: int
    exp_year: int
    # The provider's name for the card number (Stripe's card fingerprint; brand and last 4 in the sandbox):
    # with the expiry, one card, saved once per account. None on cards saved before it was kept.
    fingerprint: str | None = Field(default=None, max_length=64)
    is_default: bool = Field(default=False)
    created_at: datetime = created_at_field()

    __table_args__ = (
        sa.CheckConstraint("length(last4) = 4", name="last4_length"),
        sa.Index("uq_payment_method_same_card", "account_id", "fingerprint", "exp_month", "exp_year", unique=True),
        sa.CheckConstraint("exp_month BETWEEN 1 AND 12", name="exp_month_valid"),
        sa.CheckConstraint("exp_year BETWEEN 2000 AND 2200", name="exp_year_valid"),
        # At most one default payment method per account.
        sa.Index(
            "uq_payment_method_one_default",
            "account_id",
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        ),
    )


class PaymentMethodChange(SQLModel, table=True):
    """A change of the account's cards under way at the payment provider (make one the default, remove one).

    The provider is called outside any transaction, so this row is what keeps one change at a time per account
    (two admins cannot interleave their provider calls), and what keeps a purchase from choosing a card while
    it is being removed. A row older than a few minutes was left by a crash and may be taken over.
    """

    __tablename__ = "payment_method_change"

    account_id: int = Field(sa_column_args=[sa.ForeignKey("account.id", ondelete="CASCADE")], primary_key=True)
    payment_method_id: int = fk("payment_method.id", ondelete="CASCADE", index=False)
    action: str = Field(max_length=20)
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

    __table_args__ = (sa.CheckConstraint("action IN ('make_default', 'remove')", name="action_known"),)


class LicenseStatus(StrEnum):
    # Between "charge requested" and "charge confirmed"; never shown, never assignable.
    PENDING = "pending"
    ACTIVE = "active"
    PAST_DUE = "past_due"  # a renewal failed; retried (`services.renewals`); seats still work
    SUSPENDED = "suspended"  # every retry failed: seats stay assigned but grant nothing until it is paid
    CANCELED = "canceled"


LICENSE_STATUS_VALUES = ", ".join(f"'{status.value}'" for status in LicenseStatus)


class License(SQLModel, table=True):
    """A purchase: a number of seats of one plan, billed monthly."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    plan_id: int = fk("plan.id")
    reference_name: str = Field(max_length=80)
    quantity: int
    # Price and discount as they were when bought, so later catalog changes do not rewrite history.
    unit_amount: int
    currency: str = Field(max_length=3)
    coupon_id: int | None = fk("coupon.id", nullable=True)
    discount_amount: int = Field(default=0)  # off the first month, minor units
    discount_description: str = Field(default="", max_length=120)
    first_charge_amount: int = Field(default=0)
    payment_method_id: int | None = fk("payment_method.id", nullable=True, index=False)
    status: str = Field(default=LicenseStatus.ACTIVE.value, max_length=16)
    provider_subscription_id: str | None = Field(default=None, max_length=64, unique=True)
    # Open seats right now; kept in step with SeatAssignment by the seat service, capped here.
    seats_assigned: int = Field(default=0)
    idempotency_key: str | None = Field(default=None, max_length=80)
    created_by_user_id: int | None = fk("user.id", nullable=True)
    created_at: datetime = created_at_field()
    # When the provider's newest applied news about this subscription happened (webhooks arrive out of order:
    # older news than this is not applied).
    provider_updated_at: datetime | None = optional_time_field()
    # The billing period paid for: [period_start, period_end). Period n starts n calendar months after
    # `created_at` (`services.periods`); `periods_billed` counts the periods charged, first included, so the
    # current one is number periods_billed - 1 (what a coupon's months are counted against).
    period_start: datetime = Field(sa_type=UTCDateTime, nullable=False)
    period_end: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    periods_billed: int = Field(default=1)
    # Changes that take effect at the next renewal: fewer seats, a cheaper plan, the end.
    next_quantity: int | None = Field(default=None)
    next_plan_id: int | None = fk("plan.id", nullable=True, index=False)
    cancel_at_period_end: bool = Field(default=False)
    canceled_at: datetime | None = optional_time_field()
    # A failed renewal: when it first failed, how many attempts failed, when the next one is due.
    past_due_since: datetime | None = optional_time_field()
    renewal_failures: int = Field(default=0)
    next_attempt_at: datetime | None = optional_time_field()

    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("unit_amount >= 0", name="unit_amount_not_negative"),
        sa.CheckConstraint("discount_amount >= 0", name="discount_not_negative"),
        sa.CheckConstraint("first_charge_amount >= 0", name="first_charge_not_negative"),
        sa.CheckConstraint("length(trim(reference_name)) > 0", name="reference_name_not_blank"),
        sa.CheckConstraint(f"status IN ({LICENSE_STATUS_VALUES})", name="status_valid"),
        # Never more seats held than bought, nor than the seats left after a decrease that is scheduled.
        sa.CheckConstraint("seats_assigned >= 0 AND seats_assigned <= quantity", name="seats_within_quantity"),
        sa.CheckConstraint("next_quantity IS NULL OR (next_quantity > 0 AND next_quantity < quantity"
                           " AND seats_assigned <= next_quantity)", name="next_quantity_valid"),
        sa.CheckConstraint("period_end > period_start AND periods_billed >= 1", name="period_valid"),
        sa.CheckConstraint("renewal_failures >= 0", name="renewal_failures_not_negative"),
        # One license per submitted form, however often it is submitted.
        sa.UniqueConstraint("account_id", "idempotency_key"),
    )


class LicenseChange(SQLModel, table=True):
    """A change of a license made now and charged now, prorated (more seats, a dearer plan): exactly once, like
    Create. One row per submitted form (its idempotency key, unique per account) and at most one change under
    way per license (a partial unique index), so two changes at once cannot both be charged."""

    __tablename__ = "license_change"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    license_id: int = fk("license.id")
    idempotency_key: str = Field(max_length=80)
    status: str = Field(default="pending", max_length=12)
    period_index: int
    quantity_before: int
    quantity_after: int
    plan_id_before: int = fk("plan.id", index=False)
    plan_id_after: int = fk("plan.id", index=False)
    unit_amount_after: int
    amount_due: int  # prorated, minor units of the license's currency
    outcome: str = Field(default="", max_length=200)
    created_by_user_id: int | None = fk("user.id", nullable=True, index=False)
    created_at: datetime = created_at_field()
    finished_at: datetime | None = optional_time_field()

    __table_args__ = (
        sa.UniqueConstraint("account_id", "idempotency_key"),
        sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name="status_valid"),
        sa.CheckConstraint("quantity_before > 0 AND quantity_after >= quantity_before", name="quantity_grows"),
        sa.CheckConstraint("amount_due >= 0 AND unit_amount_after >= 0", name="amounts_not_negative"),
        sa.Index("uq_license_change_one_pending", "license_id", unique=True,
                 sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'")),
    )


class SeatAssignment(SQLModel, table=True):
    """One seat of a license held by one employee or one child account, from a time to a time.

    Rows are never deleted: freeing a seat sets `unassigned_at`, so the history stays.
    """

    __tablename__ = "seat_assignment"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    license_id: int = fk("license.id")
    employee_id: int | None = fk("employee.id", nullable=True)
    child_account_id: int | None = fk("child_account.id", nullable=True)
    assigned_at: datetime = created_at_field()
    assigned_by_user_id: int | None = fk("user.id", nullable=True, index=False)
    unassigned_at: datetime | None = optional_time_field()
    unassigned_by_user_id: int | None = fk("user.id", nullable=True, index=False)
    # Set when the seat was moved: the assignment that took over, at the same instant.
    moved_to_id: int | None = fk("seat_assignment.id", nullable=True, index=False)
    # Why the portal itself ended the seat (the license was canceled); NULL when a person freed or moved it.
    ended_reason: str | None = Field(default=None, max_length=40)
    # When a product last asked about this seat through the entitlements API: written at most once an hour
    # (a conditional UPDATE, `services.entitlements.record_use`), so checks stay reads.
    last_used_at: datetime | None = optional_time_field()

    __table_args__ = (
        sa.CheckConstraint(
            "(employee_id IS NULL) <> (child_account_id IS NULL)", name="exactly_one_holder"
        ),
        sa.CheckConstraint("unassigned_at IS NULL OR unassigned_at >= assigned_at", name="ends_after_start"),
        # A holder cannot hold two open seats of the same license.
        sa.Index(
            "uq_seat_assignment_open_employee",
            "license_id",
            "employee_id",
            unique=True,
            sqlite_where=sa.text("unassigned_at IS NULL AND employee_id IS NOT NULL"),
            postgresql_where=sa.text("unassigned_at IS NULL AND employee_id IS NOT NULL"),
        ),
        sa.Index(
            "uq_seat_assignment_open_child",
            "license_id",
            "child_account_id",
            unique=True,
            sqlite_where=sa.text("unassigned_at IS NULL AND child_account_id IS NOT NULL"),
            postgresql_where=sa.text("unassigned_at IS NULL AND child_account_id IS NOT NULL"),
        ),
        # The entitlements API pages an account's open seats in id order (keyset). A holder's seats are found by
        # the foreign keys' indexes (employee) and `uq_seat_assignment_open_child` (child accounts).
        sa.Index("ix_seat_assignment_open_by_account", "account_id", "id",
                 sqlite_where=sa.text("unassigned_at IS NULL"), postgresql_where=sa.text("unassigned_at IS NULL")),
    )


class CouponRedemption(SQLModel, table=True):
    __tablename__ = "coupon_redemption"

    id: int | None = Field(default=None, primary_key=True)
    coupon_id: int = fk("coupon.id")
    account_id: int = fk("account.id", ondelete="CASCADE")
    license_id: int = Field(sa_column_args=[sa.ForeignKey("license.id")], unique=True)
    redeemed_at: datetime = created_at_field()


class Invoice(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    license_id: int | None = fk("license.id", nullable=True)
    provider_invoice_id: str | None = Field(default=None, max_length=64, unique=True)
    number: str = Field(max_length=40)
    status: str = Field(default="paid", max_length=16)
    currency: str = Field(max_length=3)
    subtotal: int
    discount: int = Field(default=0)
    total: int
    period_start: datetime = created_at_field()
    period_end: datetime | None = optional_time_field()
    created_at: datetime = created_at_field()
    # What it charged for: the first month, a renewal (of period `period_index`), or a change within a period.
    kind: str = Field(default="first", max_length=12)
    period_index: int | None = Field(default=None)

    __table_args__ = (
        sa.UniqueConstraint("account_id", "number"),
        sa.CheckConstraint("kind IN ('first', 'renewal', 'change')", name="kind_known"),
        # One renewal invoice per license and period, whoever runs the renewal and however often.
        sa.Index("uq_invoice_renewal_per_period", "license_id", "period_index", unique=True,
                 sqlite_where=sa.text("kind = 'renewal'"), postgresql_where=sa.text("kind = 'renewal'")),
        sa.CheckConstraint("subtotal >= 0 AND discount >= 0 AND total >= 0", name="amounts_not_negative"),
        sa.CheckConstraint("total = subtotal - discount", name="total_adds_up"),
        sa.CheckConstraint("status IN ('draft', 'open', 'paid', 'void', 'uncollectible')", name="status_valid"),
    )


class InvoiceLine(SQLModel, table=True):
    __tablename__ = "invoice_line"

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = fk("invoice.id", ondelete="CASCADE")
    # Carries the license's reference name, as customers see it on the invoice.
    description: str = Field(max_length=200)
    quantity: int
    unit_amount: int
    amount: int

    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("unit_amount >= 0 AND amount >= 0", name="amounts_not_negative"),
    )


class ApiKey(SQLModel, table=True):
    """A key a product (or an operator's script) presents to the HTTP API (`Authorization: Bearer cfk_live_…`).

    Like sessions, only the SHA-256 digest of the key is stored: the key is shown once, when it is made
    (`services.api_keys`). `prefix` is its first characters, to tell keys apart in a list. A revoked key is kept
    (its name stays in the history) and refused at once: every request looks its row up again."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    name: str = Field(max_length=80)
    prefix: str = Field(max_length=24)
    secret_hash: str = Field(max_length=64, unique=True)
    # Space-separated, from `services.api_keys.SCOPES` ("entitlements:read").
    scopes: str = Field(max_length=200)
    created_by_user_id: int | None = fk("user.id", nullable=True, index=False)
    created_at: datetime = created_at_field()
    # Written at most once an hour (a conditional UPDATE), so requests stay reads.
    last_used_at: datetime | None = optional_time_field()
    revoked_at: datetime | None = optional_time_field()

    __table_args__ = (
        sa.CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        sa.CheckConstraint("substr(prefix, 1, 4) = 'cfk_'", name="prefix_format"),
        sa.CheckConstraint("length(secret_hash) = 64", name="secret_hash_sha256"),
        sa.CheckConstraint("length(trim(scopes)) > 0", name="scopes_not_blank"),
        sa.CheckConstraint("revoked_at IS NULL OR revoked_at >= created_at", name="revoked_after_creation"),
    )


class AuditEvent(SQLModel, table=True):
    """Who did what to which object, and when. Written in the same transaction as the change."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    actor_user_id: int | None = fk("user.id", nullable=True, index=False)
    action: str = Field(max_length=60)
    object_type: str = Field(max_length=40)
    object_id: int | None = Field(default=None)
    detail: str = Field(default="", max_length=500)
    created_at: datetime = created_at_field()


HELP_COMMENT_MAX = 1000  # characters of a help feedback comment


class HelpFeedback(SQLModel, table=True):
    """An answer to "Did this answer your question?" at the end of a screen's Help panel, with an optional
    comment. `page` is a key of cf_portal/help_content.py."""

    __tablename__ = "help_feedback"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    user_id: int = fk("user.id", ondelete="CASCADE", index=False)
    page: str = Field(max_length=40)
    answer: str = Field(max_length=3)
    comment: str = Field(default="", max_length=HELP_COMMENT_MAX)
    created_at: datetime = created_at_field()

    __table_args__ = (
        sa.CheckConstraint("answer IN ('yes', 'no')", name="answer_known"),
        sa.CheckConstraint(f"length(comment) <= {HELP_COMMENT_MAX}", name="comment_bounded"),
        sa.Index("ix_help_feedback_created_at", "created_at"),
    )


class ProviderEvent(SQLModel, table=True):
    """Each webhook event of the payment provider, stored once: a replayed delivery finds its row and does
    nothing again."""

    __tablename__ = "provider_event"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    event_id: str = Field(max_length=100)
    type: str = Field(max_length=80)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)  # the event's own time
    outcome: str = Field(default="", max_length=200)
    received_at: datetime = created_at_field()

    __table_args__ = (sa.UniqueConstraint("provider", "event_id"),)


# --- Outgoing webhooks -----------------------------------------------------------------------


WEBHOOK_EVENT_TYPES = ("seat.assigned", "seat.unassigned", "seat.moved", "license.suspended", "license.canceled")
WEBHOOK_EVENT_TYPE_VALUES = ", ".join(f"'{kind}'" for kind in WEBHOOK_EVENT_TYPES)


class WebhookEndpoint(SQLModel, table=True):
    """An owner's URL that is told of seat and license changes (`cf_portal.services.webhooks`).

    The signing secret is not stored: it is HMAC(the server's CF_WEBHOOK_SIGNING_KEY, id and `secret_salt`), so a
    copy of the database alone cannot sign (or forge) a delivery. A new salt rolls the secret."""

    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    url: str = Field(max_length=2000)
    # The event types it wants, comma-separated, in the order of WEBHOOK_EVENT_TYPES.
    event_types: str = Field(max_length=200)
    description: str = Field(default="", max_length=120)
    secret_salt: str = Field(max_length=64)
    created_by_user_id: int | None = fk("user.id", nullable=True, index=False)
    created_at: datetime = created_at_field()
    # A disabled endpoint is sent nothing (new events are not written for it; its pending ones wait).
    disabled_at: datetime | None = optional_time_field()

    __table_args__ = (
        sa.CheckConstraint("url LIKE 'https://%' OR url LIKE 'http://%'", name="url_http"),
        sa.CheckConstraint("length(event_types) > 0", name="event_types_not_empty"),
        sa.CheckConstraint("length(secret_salt) >= 32", name="secret_salt_long"),
    )


class WebhookEventStatus(StrEnum):
    PENDING = "pending"  # to be sent (again) at next_attempt_at
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # every attempt failed; `resend` queues it again


WEBHOOK_EVENT_STATUS_VALUES = ", ".join(f"'{status.value}'" for status in WebhookEventStatus)


class WebhookEvent(SQLModel, table=True):
    """The outbox: one event for one endpoint, written in the transaction of the change it tells of, so it
    exists exactly when the change does. Every endpoint of the account that wants the type gets its own row with
    the same `event_id`, so each is retried and logged on its own. A claimed row's `next_attempt_at` is the end of
    the claim (`claim_token` names the worker's claim): a worker that died leaves it to be claimed again then."""

    __tablename__ = "webhook_event"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE")
    endpoint_id: int = fk("webhook_endpoint.id", ondelete="CASCADE", index=False)
    # The id receivers see ("evt_…"), the same for every endpoint: they deduplicate by it.
    event_id: str = Field(max_length=40)
    type: str = Field(max_length=40)
    payload: str = Field(sa_type=sa.Text, nullable=False)  # the JSON body, byte for byte as signed and sent
    created_at: datetime = created_at_field()
    status: str = Field(default=WebhookEventStatus.PENDING.value, max_length=12)
    attempts: int = Field(default=0)  # attempts since it was (re)queued
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    claim_token: str | None = Field(default=None, max_length=32)
    delivered_at: datetime | None = optional_time_field()

    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.CheckConstraint(f"type IN ({WEBHOOK_EVENT_TYPE_VALUES})", name="type_known"),
        sa.CheckConstraint(f"status IN ({WEBHOOK_EVENT_STATUS_VALUES})", name="status_valid"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.CheckConstraint("(status = 'delivered') = (delivered_at IS NOT NULL)", name="delivered_when_delivered"),
        # The worker's query: the pending rows whose time has come, oldest first.
        sa.Index("ix_webhook_event_due", "next_attempt_at", sqlite_where=sa.text("status = 'pending'"),
                 postgresql_where=sa.text("status = 'pending'")),
        # The delivery log of an endpoint, newest first.
        sa.Index("ix_webhook_event_endpoint_created", "endpoint_id", "created_at"),
    )


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver a webhook event: when, how long, what the endpoint answered (no body kept)."""

    __tablename__ = "webhook_delivery"

    id: int | None = Field(default=None, primary_key=True)
    webhook_event_id: int = fk("webhook_event.id", ondelete="CASCADE")
    attempted_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status_code: int | None = Field(default=None)  # None: no answer (timeout, refused connection)
    error: str = Field(default="", max_length=200)
    duration_ms: int = Field(default=0)

    __table_args__ = (sa.CheckConstraint("duration_ms >= 0", name="duration_not_negative"),)


class EmailStatus(StrEnum):
    QUEUED = "queued"  # to be sent (again) at next_attempt_at
    SENT = "sent"  # the SMTP server took it (or, without CF_SMTP_URL, it went to the Sent emails log)
    FAILED = "failed"  # refused for good, or every attempt failed


EMAIL_STATUS_VALUES = ", ".join(f"'{status.value}'" for status in EmailStatus)


class EmailMessage(SQLModel, table=True):
    """The email outbox, and the account's Sent emails log: one message, written in the transaction of the change
    it tells of (services/emails.py), delivered by a worker with retries. A claimed row's `next_attempt_at` is the
    end of the claim (`claim_token`), as for webhook events. `secret` holds what the message must carry but the
    database must not keep (an invitation's token) until the message is sent or failed; the bodies hold the marker
    `emails.SECRET_MARK` in its place."""

    __tablename__ = "email_message"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = fk("account.id", ondelete="CASCADE", index=False)
    kind: str = Field(max_length=40)
    to_address: str = Field(max_length=254)
    reply_to: str = Field(default="", max_length=254)
    subject: str = Field(max_length=200)
    text_body: str = Field(sa_type=sa.Text, nullable=False)
    html_body: str = Field(sa_type=sa.Text, nullable=False)
    secret: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()
    status: str = Field(default=EmailStatus.QUEUED.value, max_length=12)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    claim_token: str | None = Field(default=None, max_length=32)
    sent_at: datetime | None = optional_time_field()
    last_error: str = Field(default="", max_length=300)
    # "smtp", or "log" when no SMTP server is set (demo mode): the message is then only in this log.
    transport: str = Field(default="", max_length=8)

    __table_args__ = (
        sa.CheckConstraint(f"status IN ({EMAIL_STATUS_VALUES})", name="status_valid"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent_when_sent"),
        sa.Index("ix_email_message_due", "next_attempt_at", sqlite_where=sa.text("status = 'queued'"),
                 postgresql_where=sa.text("status = 'queued'")),
        # The Sent emails log of an account, newest first.
        sa.Index("ix_email_message_account_created", "account_id", "created_at"),
    )
