"""All configuration of cf_portal, read once from the environment (and an optional .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


class Settings(BaseSettings):
    """Every variable is documented in the README's Configuration table."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR / 'cf_portal.db'}",
        validation_alias=AliasChoices("REFLEX_DB_URL", "DATABASE_URL", "CF_DATABASE_URL"),
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REFLEX_REDIS_URL"))
    # Defaults to the sandbox in demo mode only; outside it the operator says which (see _check).
    payment_provider: Literal["sandbox", "stripe"] = Field(
        default="sandbox", validation_alias=AliasChoices("CF_PAYMENT_PROVIDER")
    )
    stripe_secret_key: str | None = Field(default=None, validation_alias=AliasChoices("STRIPE_SECRET_KEY"), repr=False)
    stripe_publishable_key: str | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_PUBLISHABLE_KEY")
    )
    # Another address for Stripe's API: only a test server such as localstripe (refused with a live key).
    stripe_api_base: str | None = Field(default=None, validation_alias=AliasChoices("CF_STRIPE_API_BASE"))
    # The signing secret of the Stripe webhook endpoint (whsec_…); the webhook route refuses events without it.
    stripe_webhook_secret: str | None = Field(default=None, validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET"),
                                              repr=False)
    demo_mode: bool = Field(default=True, validation_alias=AliasChoices("CF_DEMO_MODE"))
    # The server key each webhook endpoint's signing secret is derived from (services/webhooks.py): with the
    # database alone no secret can be worked out. Changing it changes every endpoint's secret. Outside demo mode
    # webhooks need it (at least 32 characters); demo mode has a fixed stand-in.
    webhook_signing_key: str | None = Field(default=None, min_length=32, repr=False,
                                            validation_alias=AliasChoices("CF_WEBHOOK_SIGNING_KEY"))
    # Who delivers the outgoing webhooks: "app" (default) runs the worker inside the app (cf_portal/webhook_worker.py),
    # so one process is enough; "off" for deployments that run `cli deliver-webhooks --loop` as a process of its own.
    webhook_worker: Literal["app", "off"] = Field(default="app", validation_alias=AliasChoices("CF_WEBHOOK_WORKER"))
    # How many "Try the demo" visitors may have their own copy of the demo account at once (each lasts a day).
    demo_max_copies: int = Field(default=200, ge=1, le=100_000, validation_alias=AliasChoices("CF_DEMO_MAX_COPIES"))
    # The operator's catalog (JSON or TOML, format in the README), loaded by `cli load-catalog` and, outside
    # demo mode, by `cli seed`.
    catalog_file: Path | None = Field(default=None, validation_alias=AliasChoices("CF_CATALOG_FILE"))
    # Set when the portal is served over HTTPS: session cookies are then sent over HTTPS only.
    secure_cookies: bool = Field(default=False, validation_alias=AliasChoices("CF_SECURE_COOKIES"))
    # How many reverse proxies stand in front of the portal: the client's address (for throttling sign-ins,
    # sign-ups and coupon guesses) is then read from X-Forwarded-For that many entries from its end.
    trusted_proxy_hops: int = Field(default=0, ge=0, le=10, validation_alias=AliasChoices("CF_TRUSTED_PROXY_HOPS"))
    port: int = Field(default=3000, ge=1, le=65535, validation_alias=AliasChoices("CF_PORT", "PORT"))
    # The origins (scheme://host[:port], comma-separated) the browser reaches the portal at: only pages from
    # these may open its websocket or call its routes (CORS). Default: this machine on `port`.
    allowed_origins: str = Field(default="", validation_alias=AliasChoices("CF_ALLOWED_ORIGINS"))
    # The address people reach the portal at (scheme://host[:port]) when a reverse proxy serves it. The browser
    # opens the websocket there (Reflex would otherwise guess: this machine, or port 443 over HTTPS), and it is
    # the allowed origin unless CF_ALLOWED_ORIGINS names others.
    public_url: str = Field(default="", validation_alias=AliasChoices("CF_PUBLIC_URL"))
    # Email (services/emails.py). The SMTP server: smtp://[user:password@]host[:port] (STARTTLS when the server
    # offers it, required before a password is sent to anything but loopback) or smtps://host[:port] (TLS from
    # the start). Unset: messages go to the in-app Sent emails log only (demo mode). Never logged or stored.
    smtp_url: str | None = Field(default=None, repr=False, validation_alias=AliasChoices("CF_SMTP_URL"))
    # The user name and password, when they are not in CF_SMTP_URL.
    smtp_username: str | None = Field(default=None, repr=False, validation_alias=AliasChoices("CF_SMTP_USERNAME"))
    smtp_password: str | None = Field(default=None, repr=False, validation_alias=AliasChoices("CF_SMTP_PASSWORD"))
    # The From of every message the portal sends.
    email_from: str = Field(default="ChatFortress <no-reply@chatfortress.com>",
                            validation_alias=AliasChoices("CF_EMAIL_FROM"))
    # Where the Contact us page points, and where its form sends.
    support_email: str = Field(default="support@chatfortress.com", validation_alias=AliasChoices("CF_SUPPORT_EMAIL"))
    # Who sends the queued emails: "app" (default: a task of the app) or "off" (`cli deliver-emails --loop`).
    email_worker: Literal["app", "off"] = Field(default="app", validation_alias=AliasChoices("CF_EMAIL_WORKER"))

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.database_url.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; the bare scheme would ask SQLAlchemy for psycopg2.
            self.database_url = "postgresql+psycopg://" + self.database_url.removeprefix("postgresql://")
        elif self.database_url.startswith("postgres://"):
            self.database_url = "postgresql+psycopg://" + self.database_url.removeprefix("postgres://")
        if not self.demo_mode and "payment_provider" not in self.model_fields_set:
            raise ValueError("CF_DEMO_MODE=false needs CF_PAYMENT_PROVIDER set explicitly: 'stripe' to take real "
                             "payments, or 'sandbox' for an install that must never charge anyone (the sandbox "
                             "accepts test card numbers and takes no money)")
        if self.catalog_file is not None and not self.catalog_file.is_file():
            raise ValueError(f"CF_CATALOG_FILE names {self.catalog_file}, which is not a file")
        if self.payment_provider == "stripe" and not self.stripe_secret_key:
            raise ValueError("CF_PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY")
        live = bool(self.stripe_secret_key and self.stripe_secret_key.startswith(("sk_live_", "rk_live_")))
        if live and self.demo_mode:
            raise ValueError("demo mode (CF_DEMO_MODE) is refused together with a live Stripe key")
        if live and self.stripe_api_base:
            raise ValueError("CF_STRIPE_API_BASE (a test server) is refused together with a live Stripe key")
        if self.payment_provider == "stripe" and not self.stripe_publishable_key:
            raise ValueError("CF_PAYMENT_PROVIDER=stripe needs STRIPE_PUBLISHABLE_KEY (for the card form)")
        if self.secure_cookies and "trusted_proxy_hops" not in self.model_fields_set:
            # HTTPS usually means a reverse proxy in front: without the hops every visitor would have the
            # proxy's address, and one person's failed sign-ins would lock everyone out.
            raise ValueError("CF_SECURE_COOKIES=true needs CF_TRUSTED_PROXY_HOPS: the number of reverse proxies "
                             "in front of the portal (1 for one nginx, Caddy or load balancer), or 0 if the "
                             "portal is reached directly")
        if self.smtp_url and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise ValueError("CF_SMTP_URL must start with smtp:// (STARTTLS) or smtps:// (TLS)")
        self.public_url = self.public_url.strip().rstrip("/")
        if self.public_url and not _is_origin(self.public_url):
            raise ValueError(f"CF_PUBLIC_URL: {self.public_url!r} is not an address like https://licenses.example.com "
                             "(scheme, host and port only: no path)")
        if self.secure_cookies and not self.allowed_origins.strip() and not self.public_url:
            raise ValueError("CF_SECURE_COOKIES=true needs CF_PUBLIC_URL (or CF_ALLOWED_ORIGINS): the address the "
                             "portal is served at, e.g. https://licenses.example.com")
        if self.public_url and self.public_url not in self.origins:
            raise ValueError(f"CF_PUBLIC_URL {self.public_url} is missing from CF_ALLOWED_ORIGINS: the portal's own "
                             "pages could not open its websocket")
        if not self.secure_cookies and any(o.startswith("https://") for o in self.origins):
            raise ValueError("CF_PUBLIC_URL or CF_ALLOWED_ORIGINS names an https:// address: set "
                             "CF_SECURE_COOKIES=true too, so the session cookie is sent over HTTPS only and browsers "
                             "are told to stay on HTTPS (HSTS)")
        for origin in self.origins:
            if not _is_origin(origin):
                raise ValueError(f"CF_ALLOWED_ORIGINS: {origin!r} is not an origin like https://licenses.example.com")
        return self

    @property
    def origins(self) -> list[str]:
        if self.allowed_origins.strip():
            return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]
        if self.public_url:
            return [self.public_url]
        return [f"http://localhost:{self.port}", f"http://127.0.0.1:{self.port}"]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_data_dir(self) -> None:
        """Create the folder of a file-backed SQLite database."""
        if self.is_sqlite and ":memory:" not in self.database_url:
            Path(self.database_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)


def _is_origin(address: str) -> bool:
    """scheme://host[:port], nothing after it."""
    return address.startswith(("http://", "https://")) and address.count("/") == 2 and len(address.split("/")[2]) > 0


@lru_cache
def get_settings() -> Settings:
    return Settings()
