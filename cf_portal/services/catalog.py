"""The catalog (products, their plans, coupons) as a file describes it, and loading it into the database.

In demo mode the seed loads the demo catalog (`seed.DEMO_CATALOG`); in production the operator's file does,
named by `CF_CATALOG_FILE` (`python -m cf_portal.cli load-catalog`, or `seed` outside demo mode). The file is
JSON or TOML (by its suffix) and is checked whole before anything is written: one mistake loads nothing.

Loading is idempotent: rows are matched by their codes; what is missing is created and nothing that is
already there is changed (licenses keep the price they were bought at; a new price is a new plan code, a coupon
with new terms a new coupon code, as at Stripe, where coupons cannot be edited).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlmodel import Session, select

from cf_portal.models import Coupon, CouponDuration, CouponProduct, Plan, Product
from cf_portal.services.coupons import normalise_code
from cf_portal.services.errors import DomainError

Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
CouponCode = Annotated[str, AfterValidator(normalise_code), Field(min_length=1, max_length=40)]
Currency = Annotated[str, AfterValidator(str.lower), Field(pattern=r"^[A-Za-z]{3}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanSpec(_Strict):
    code: Code
    name: str = Field(min_length=1, max_length=80)
    unit_amount: int = Field(ge=0, description="one license for one month, in minor units (cents)")
    currency: Currency = "usd"


class ProductSpec(_Strict):
    code: Code
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=400)
    plans: list[PlanSpec] = Field(min_length=1)


class CouponSpec(_Strict):
    code: CouponCode
    percent_off: int | None = Field(default=None, ge=1, le=100)
    amount_off: int | None = Field(default=None, gt=0, description="minor units of `currency`")
    currency: Currency | None = None
    duration: CouponDuration
    duration_months: int | None = Field(default=None, ge=1)
    expires_at: AwareDatetime | None = None
    max_redemptions: int | None = Field(default=None, ge=0)
    # Redemptions made before the portal (a coupon moved from another system): they count against the limit.
    times_redeemed: int = Field(default=0, ge=0)
    min_quantity: int = Field(default=1, ge=1)
    products: list[Code] = Field(default_factory=list, description="only these products; none = every product")

    @model_validator(mode="after")
    def _one_discount(self) -> CouponSpec:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError(f"coupon {self.code}: give either percent_off or amount_off")
        if self.amount_off is not None and self.currency is None:
            raise ValueError(f"coupon {self.code}: amount_off needs a currency")
        if (self.duration == CouponDuration.REPEATING) != (self.duration_months is not None):
            raise ValueError(f"coupon {self.code}: duration_months goes with duration 'repeating', and only with it")
        if self.max_redemptions is not None and self.times_redeemed > self.max_redemptions:
            raise ValueError(f"coupon {self.code}: times_redeemed is above max_redemptions")
        return self


class CatalogSpec(_Strict):
    products: list[ProductSpec] = Field(min_length=1)
    coupons: list[CouponSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _codes_unique_and_known(self) -> CatalogSpec:
        for kind, codes in (("product", [p.code for p in self.products]),
                            ("plan", [plan.code for p in self.products for plan in p.plans]),
                            ("coupon", [c.code for c in self.coupons])):
            twice = sorted({code for code in codes if codes.count(code) > 1})
            if twice:
                raise ValueError(f"{kind} codes appear more than once: {', '.join(twice)}")
        products = {p.code for p in self.products}
        for coupon in self.coupons:
            unknown = sorted(set(coupon.products) - products)
            if unknown:
                raise ValueError(f"coupon {coupon.code} names products the file does not have: {', '.join(unknown)}")
        return self


def read_catalog_file(path: Path) -> CatalogSpec:
    """The catalog of a JSON (.json) or TOML (.toml) file; DomainError saying what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:  # JSON and TOML syntax errors are ValueErrors
        raise DomainError(f"{path}: cannot be read ({exc})") from None
    try:
        return CatalogSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
                             for error in exc.errors())
        raise DomainError(f"{path}: {problems}") from None


@dataclass(frozen=True)
class LoadReport:
    created: int
    already_there: int

    def __str__(self) -> str:
        return f"{self.created} rows created, {self.already_there} already there"


class RowLoader:
    """Adds the rows that are missing, matched by their natural keys; counts what it found."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.created = 0
        self.already_there = 0

    def get_or_add(self, model, where: dict, **values):  # noqa: ANN001, ANN201
        row = self.session.exec(select(model).filter_by(**where)).first()
        if row is not None:
            self.already_there += 1
            return row
        row = model(**where, **values)
        self.session.add(row)
        self.session.flush()
        self.created += 1
        return row

    def report(self) -> LoadReport:
        return LoadReport(created=self.created, already_there=self.already_there)


def load_catalog(session: Session, catalog: CatalogSpec) -> LoadReport:
    loader = RowLoader(session)
    add_catalog(loader, catalog)
    return loader.report()


def add_catalog(loader: RowLoader, catalog: CatalogSpec) -> None:
    products: dict[str, Product] = {}
    for order, spec in enumerate(catalog.products):
        product = loader.get_or_add(Product, {"code": spec.code}, name=spec.name, description=spec.description,
                                    sort_order=order)
        products[spec.code] = product
        for plan_order, plan in enumerate(spec.plans):
            loader.get_or_add(Plan, {"code": plan.code}, product_id=product.id, name=plan.name,
                              unit_amount=plan.unit_amount, currency=plan.currency, sort_order=plan_order)
    for spec in catalog.coupons:
        values = spec.model_dump(exclude={"code", "products"})
        values["duration"] = spec.duration.value
        coupon = loader.get_or_add(Coupon, {"code": spec.code}, **values)
        for product_code in spec.products:
            product = products[product_code]
            loader.get_or_add(CouponProduct, {"coupon_id": coupon.id, "product_id": product.id})
